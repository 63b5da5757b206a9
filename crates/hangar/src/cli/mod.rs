//! `hangar key ...`, `hangar bucket ...`, `hangar node ...`, `hangar status`,
//! `hangar layout ...`, `hangar worker ...` and `hangar repair ...`: a client of
//! the admin API.
//!
//! Every command builds [`hangar_api_admin::AdminRequest`]s, sends them to the
//! admin API named by [`AdminTarget`], and prints the answers as text. Nothing here
//! touches the store directly.

mod buckets;
mod client;
mod cluster;
mod keys;
mod layout;
mod size;
mod table;
mod workers;

pub use buckets::run_bucket;
pub use cluster::{run_node, run_status, NodeCommand};
pub use keys::run_key;
pub use layout::{run_layout, LayoutCommand};
pub use workers::{run_repair, run_worker, RepairWhat, WorkerCommand};

/// Where the admin API is and the token it wants.
#[derive(Clone, Debug, clap::Args)]
pub struct AdminTarget {
    /// URL of the admin API (http only).
    #[arg(
        long = "admin-url",
        env = "HANGAR_ADMIN_URL",
        default_value = "http://127.0.0.1:3903",
        global = true
    )]
    pub url: String,
    /// Bearer token of the admin API.
    #[arg(
        long = "admin-token",
        env = "HANGAR_ADMIN_TOKEN",
        hide_env_values = true,
        default_value = "",
        hide_default_value = true,
        global = true
    )]
    pub token: String,
}

/// `hangar key ...`: access keys. A key is named by its id, its name, or a unique
/// prefix of its id.
#[derive(Clone, Debug, PartialEq, Eq, clap::Subcommand)]
pub enum KeyCommand {
    /// Creates a key with a generated id and secret, and prints the secret.
    Create {
        /// Name of the key.
        name: String,
    },
    /// Imports a key with a given id and secret (e.g. from another store).
    Import {
        /// Access key id.
        id: String,
        /// Secret key.
        secret: String,
        /// Name of the key.
        #[arg(long)]
        name: Option<String>,
    },
    /// Lists keys.
    List,
    /// Shows a key and the buckets it can use.
    Info {
        /// The key.
        key: String,
        /// Also print the secret key.
        #[arg(long)]
        show_secret: bool,
    },
    /// Deletes a key.
    Delete {
        /// The key.
        key: String,
    },
    /// Grants a key global rights.
    Allow {
        /// The key.
        key: String,
        /// The right to create buckets.
        #[arg(long, required = true)]
        create_bucket: bool,
    },
    /// Revokes global rights from a key.
    Deny {
        /// The key.
        key: String,
        /// The right to create buckets.
        #[arg(long, required = true)]
        create_bucket: bool,
    },
}

/// `hangar bucket ...`: buckets, their names and who may use them. A bucket is
/// named by a global alias, its id, or a unique prefix of its id.
#[derive(Clone, Debug, PartialEq, Eq, clap::Subcommand)]
pub enum BucketCommand {
    /// Creates a bucket.
    Create {
        /// Its global name.
        name: String,
    },
    /// Lists buckets.
    List,
    /// Shows a bucket and the keys that can use it.
    Info {
        /// The bucket.
        bucket: String,
    },
    /// Deletes an empty bucket.
    Delete {
        /// The bucket.
        bucket: String,
    },
    /// Grants a key rights on a bucket.
    Allow {
        /// The bucket.
        bucket: String,
        #[command(flatten)]
        grant: PermissionArgs,
    },
    /// Revokes rights of a key on a bucket.
    Deny {
        /// The bucket.
        bucket: String,
        #[command(flatten)]
        grant: PermissionArgs,
    },
    /// Gives a bucket another name.
    Alias {
        /// The bucket.
        bucket: String,
        /// The new name.
        new_alias: String,
        /// Make the name private to this key instead of global.
        #[arg(long, value_name = "KEY")]
        local: Option<String>,
    },
    /// Removes a name of a bucket (a bucket keeps at least one).
    Unalias {
        /// The bucket.
        bucket: String,
        /// The name to remove.
        alias: String,
        /// The name is private to this key.
        #[arg(long, value_name = "KEY")]
        local: Option<String>,
    },
}

/// A key and the rights `bucket allow` / `bucket deny` change.
#[derive(Clone, Debug, PartialEq, Eq, clap::Args)]
pub struct PermissionArgs {
    /// The key.
    #[arg(long)]
    pub key: String,
    /// Reading and listing objects.
    #[arg(long)]
    pub read: bool,
    /// Writing and deleting objects.
    #[arg(long)]
    pub write: bool,
    /// Deleting the bucket and changing its settings.
    #[arg(long)]
    pub owner: bool,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, PartialEq, Eq, Parser)]
    enum Cli {
        #[command(subcommand)]
        Key(KeyCommand),
        #[command(subcommand)]
        Bucket(BucketCommand),
        #[command(subcommand)]
        Node(NodeCommand),
        #[command(subcommand)]
        Layout(LayoutCommand),
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("hangar").chain(args.iter().copied()))
    }

    #[test]
    fn commands_parse() {
        let cli = parse(&["key", "import", "HK1", "secret", "--name", "n"]).expect("import");
        assert!(matches!(
            cli,
            Cli::Key(KeyCommand::Import { ref id, ref name, .. }) if id == "HK1" && name.as_deref() == Some("n")
        ));
        let cli =
            parse(&["bucket", "allow", "b", "--key", "HK1", "--read", "--owner"]).expect("allow");
        let Cli::Bucket(BucketCommand::Allow { bucket, grant }) = cli else {
            panic!("parsed as {cli:?}");
        };
        assert_eq!(bucket, "b");
        assert_eq!(
            grant,
            PermissionArgs {
                key: "HK1".into(),
                read: true,
                write: false,
                owner: true
            }
        );
        let cli = parse(&["bucket", "alias", "b", "c", "--local", "HK1"]).expect("alias");
        assert!(matches!(
            cli,
            Cli::Bucket(BucketCommand::Alias { local: Some(_), .. })
        ));
    }

    #[test]
    fn cluster_commands_parse() {
        use hangar_api_admin::api::ZoneRedundancy;

        use super::layout::{AssignArgs, ConfigArgs};

        let cli = parse(&["node", "id"]).expect("node id");
        assert!(matches!(cli, Cli::Node(NodeCommand::Id)));
        let peer = format!("{}@10.0.0.2:3901", "ab".repeat(32));
        let Cli::Node(NodeCommand::Connect { peers }) =
            parse(&["node", "connect", &peer]).expect("connect")
        else {
            panic!("not a connect");
        };
        assert_eq!(peers, vec![peer]);

        let cli = parse(&[
            "layout",
            "assign",
            "ab12",
            "-z",
            "dc1",
            "-c",
            "1.5T",
            "-t",
            "ssd,rack1",
            "--tag",
            "x",
        ])
        .expect("assign");
        assert_eq!(
            cli,
            Cli::Layout(LayoutCommand::Assign(AssignArgs {
                node: "ab12".into(),
                zone: "dc1".into(),
                capacity: Some(1_500_000_000_000),
                gateway: false,
                tags: vec!["ssd".into(), "rack1".into(), "x".into()],
            }))
        );
        let cli = parse(&["layout", "assign", "ab12", "--zone", "dc2", "--gateway"])
            .expect("assign a gateway");
        assert!(matches!(
            cli,
            Cli::Layout(LayoutCommand::Assign(AssignArgs {
                gateway: true,
                capacity: None,
                ..
            }))
        ));
        let cli = parse(&[
            "layout",
            "assign",
            "ab12",
            "-z",
            "dc1",
            "--capacity",
            "2TiB",
        ])
        .expect("binary units");
        assert!(matches!(
            cli,
            Cli::Layout(LayoutCommand::Assign(AssignArgs { capacity: Some(c), .. })) if c == 2 << 40
        ));

        let cli = parse(&["layout", "config", "-r", "3", "-z", "maximum"]).expect("config");
        assert_eq!(
            cli,
            Cli::Layout(LayoutCommand::Config(ConfigArgs {
                replication_factor: Some(3),
                zone_redundancy: Some(ZoneRedundancy::Maximum),
            }))
        );
        let cli = parse(&["layout", "config", "--zone-redundancy", "2"]).expect("config");
        assert_eq!(
            cli,
            Cli::Layout(LayoutCommand::Config(ConfigArgs {
                replication_factor: None,
                zone_redundancy: Some(ZoneRedundancy::AtLeast(2)),
            }))
        );
        let cli = parse(&["layout", "apply", "--version", "4"]).expect("apply");
        assert_eq!(cli, Cli::Layout(LayoutCommand::Apply { version: 4 }));
        for (args, expected) in [
            (&["layout", "show"][..], LayoutCommand::Show),
            (&["layout", "revert"][..], LayoutCommand::Revert),
            (&["layout", "history"][..], LayoutCommand::History),
            (
                &["layout", "remove", "ab12"][..],
                LayoutCommand::Remove {
                    node: "ab12".into(),
                },
            ),
        ] {
            assert_eq!(parse(args).expect("parse"), Cli::Layout(expected));
        }
    }

    #[test]
    fn bad_cluster_commands_are_refused() {
        let refused = [
            &["node", "connect"][..],
            &["layout", "assign", "ab12", "-c", "1T"][..],
            &["layout", "assign", "ab12", "-z", "dc1"][..],
            &["layout", "assign", "ab12", "-z", "dc1", "-c", "1T", "-g"][..],
            &["layout", "assign", "ab12", "-z", "dc1", "-c", "0"][..],
            &["layout", "assign", "ab12", "-z", "dc1", "-c", "-5G"][..],
            &["layout", "assign", "ab12", "-z", "dc1", "-c", "12 parsecs"][..],
            &["layout", "config"][..],
            &["layout", "config", "-z", "0"][..],
            &["layout", "config", "-z", "minimum"][..],
            &["layout", "config", "-r", "-1"][..],
            &["layout", "apply"][..],
            &["layout", "apply", "--version", "x"][..],
        ];
        for args in refused {
            assert!(parse(args).is_err(), "{args:?} accepted");
        }
    }

    #[test]
    fn missing_arguments_are_refused() {
        assert!(parse(&["key", "allow", "HK1"]).is_err(), "no right named");
        assert!(
            parse(&["bucket", "allow", "b", "--read"]).is_err(),
            "no key"
        );
        assert!(parse(&["bucket", "create"]).is_err());
    }
}
