//! `hangar layout ...`: roles and parameters are staged, shown with what
//! applying them would move, then applied or reverted.

use hangar_api_admin::api::{
    ApplyClusterLayoutRequest, ApplyClusterLayoutResponse, ClusterLayoutSkipDeadNodesRequest,
    ClusterLayoutSkipDeadNodesResponse, GetClusterLayoutHistoryResponse, GetClusterLayoutResponse,
    LayoutParameters, LayoutParametersUpdate, NodeRoleChange, PreviewClusterLayoutChangesResponse,
    RoleChangeAction, UpdateClusterLayoutRequest, ZoneRedundancy,
};
use hangar_api_admin::AdminRequest;
use hangar_cluster::history::{format_bytes, idle_node_warning};
use hangar_cluster::PARTITION_COUNT;

use super::client::AdminClient;
use super::cluster::short_id;
use super::size::parse_size;
use super::table::{list, render};
use super::AdminTarget;

/// `hangar layout ...`. Nodes are named by their id or a unique prefix of it.
#[derive(Clone, Debug, PartialEq, Eq, clap::Subcommand)]
pub enum LayoutCommand {
    /// Shows the current layout, the staged changes and, if any, what applying
    /// them would do: per node the partitions and bytes that move, and the
    /// usable capacity before and after.
    Show,
    /// Stages a role for a node: its zone and capacity (or gateway).
    Assign(AssignArgs),
    /// Stages the removal of a node from the layout.
    Remove {
        /// The node.
        node: String,
    },
    /// Stages new layout parameters.
    Config(ConfigArgs),
    /// Applies the staged changes, creating layout version VERSION.
    Apply {
        /// The version to create: the current one plus one, as `layout show`
        /// says (so that what is applied is what was shown).
        #[arg(long)]
        version: u64,
    },
    /// Drops every staged change.
    Revert,
    /// Lets a layout change finish without the nodes that are down: gives
    /// them the acknowledgement of the current version VERSION, and with
    /// --allow-missing-data its sync too (old versions then retire even if
    /// data only those nodes held is lost).
    SkipDeadNodes {
        /// The current layout version.
        #[arg(long)]
        version: u64,
        /// Also count the dead nodes as synced.
        #[arg(long)]
        allow_missing_data: bool,
    },
    /// Lists the layout versions kept.
    History,
}

/// Arguments of `hangar layout assign`.
#[derive(Clone, Debug, PartialEq, Eq, clap::Args)]
#[command(group(clap::ArgGroup::new("kind").required(true).args(["capacity", "gateway"])))]
pub struct AssignArgs {
    /// The node.
    pub node: String,
    /// Its zone (site, datacenter...); copies of a partition go to distinct zones.
    #[arg(short, long)]
    pub zone: String,
    /// Bytes it offers for data: 100G, 1T, 500GB, 2TiB, or bytes.
    #[arg(short, long, value_parser = parse_size)]
    pub capacity: Option<u64>,
    /// Make it a gateway, which stores nothing.
    #[arg(short, long)]
    pub gateway: bool,
    /// Labels for operators (repeat, or separate with commas).
    #[arg(short, long = "tag", value_name = "TAG", value_delimiter = ',')]
    pub tags: Vec<String>,
}

/// Arguments of `hangar layout config`.
#[derive(Clone, Debug, PartialEq, Eq, clap::Args)]
#[command(group(clap::ArgGroup::new("param").required(true).multiple(true).args(["replication_factor", "zone_redundancy"])))]
pub struct ConfigArgs {
    /// Copies of each partition.
    #[arg(short, long)]
    pub replication_factor: Option<usize>,
    /// Zones each partition spans: `maximum`, or a number of zones.
    #[arg(short, long, value_parser = parse_zone_redundancy)]
    pub zone_redundancy: Option<ZoneRedundancy>,
}

/// `maximum` or a positive number of zones.
pub(crate) fn parse_zone_redundancy(text: &str) -> Result<ZoneRedundancy, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "maximum" | "max" => Ok(ZoneRedundancy::Maximum),
        n => match n.parse::<usize>() {
            Ok(0) => Err("zone redundancy must be at least 1".to_string()),
            Ok(k) => Ok(ZoneRedundancy::AtLeast(k)),
            Err(_) => Err(format!("{text:?}: expected `maximum` or a number of zones")),
        },
    }
}

/// Runs `command` against the admin API at `target` and prints the outcome.
pub async fn run_layout(target: AdminTarget, command: LayoutCommand) -> anyhow::Result<()> {
    let client = AdminClient::new(&target)?;
    match command {
        LayoutCommand::Show => {
            let layout: GetClusterLayoutResponse =
                client.call(&AdminRequest::GetClusterLayout).await?;
            out!("{}", render_layout(&layout));
            if has_staged(&layout) {
                outln!();
                out!("{}", render_staged(&layout));
                outln!();
                let preview = client
                    .call::<PreviewClusterLayoutChangesResponse>(
                        &AdminRequest::PreviewClusterLayoutChanges,
                    )
                    .await;
                match preview {
                    Ok(p) => {
                        outln!("==== WHAT APPLYING WOULD DO ====");
                        for line in &p.message {
                            outln!("{line}");
                        }
                        outln!();
                        outln!(
                            "To apply: hangar layout apply --version {}\nTo drop the staged changes: hangar layout revert",
                            p.new_layout.version
                        );
                    }
                    Err(e) => {
                        outln!("The staged changes cannot be applied: {e:#}");
                        outln!("Change them, or drop them with: hangar layout revert");
                    }
                }
            }
        }
        LayoutCommand::Assign(args) => {
            let change = NodeRoleChange {
                id: args.node,
                action: RoleChangeAction::Set {
                    zone: args.zone,
                    capacity: if args.gateway { None } else { args.capacity },
                    tags: args.tags,
                },
            };
            stage(&client, vec![change], None).await?;
        }
        LayoutCommand::Remove { node } => {
            let change = NodeRoleChange {
                id: node,
                action: RoleChangeAction::Remove,
            };
            stage(&client, vec![change], None).await?;
        }
        LayoutCommand::Config(args) => {
            let update = LayoutParametersUpdate {
                zone_redundancy: args.zone_redundancy,
                replication_factor: args.replication_factor,
            };
            stage(&client, Vec::new(), Some(update)).await?;
        }
        LayoutCommand::Apply { version } => {
            let applied: ApplyClusterLayoutResponse = client
                .call(&AdminRequest::ApplyClusterLayout(
                    ApplyClusterLayoutRequest { version },
                ))
                .await?;
            for line in &applied.message {
                outln!("{line}");
            }
            outln!();
            outln!("Layout version {} applied.", applied.layout.version);
        }
        LayoutCommand::SkipDeadNodes {
            version,
            allow_missing_data,
        } => {
            let r: ClusterLayoutSkipDeadNodesResponse = client
                .call(&AdminRequest::ClusterLayoutSkipDeadNodes(
                    ClusterLayoutSkipDeadNodesRequest {
                        version,
                        allow_missing_data,
                    },
                ))
                .await?;
            for n in &r.ack_updated {
                outln!(
                    "Acknowledged version {version} for {}.",
                    &n[..16.min(n.len())]
                );
            }
            for n in &r.sync_updated {
                outln!(
                    "Counted {} as synced to version {version}.",
                    &n[..16.min(n.len())]
                );
            }
            if r.ack_updated.is_empty() && r.sync_updated.is_empty() {
                outln!("No down node was holding layout version {version} back.");
            }
        }
        LayoutCommand::Revert => {
            let layout: GetClusterLayoutResponse =
                client.call(&AdminRequest::RevertClusterLayout).await?;
            outln!(
                "Staged changes dropped; layout version {} stays.",
                layout.version
            );
        }
        LayoutCommand::History => {
            let history: GetClusterLayoutHistoryResponse =
                client.call(&AdminRequest::GetClusterLayoutHistory).await?;
            out!("{}", render_history(&history));
        }
    }
    Ok(())
}

/// Stages `roles` and `parameters`, then prints what is staged.
async fn stage(
    client: &AdminClient,
    roles: Vec<NodeRoleChange>,
    parameters: Option<LayoutParametersUpdate>,
) -> anyhow::Result<()> {
    let layout: GetClusterLayoutResponse = client
        .call(&AdminRequest::UpdateClusterLayout(
            UpdateClusterLayoutRequest { roles, parameters },
        ))
        .await?;
    out!("{}", render_staged(&layout));
    outln!("\nSee what applying them would do with: hangar layout show");
    Ok(())
}

fn has_staged(layout: &GetClusterLayoutResponse) -> bool {
    !layout.staged_role_changes.is_empty() || layout.staged_parameters.is_some()
}

fn zone_redundancy(z: ZoneRedundancy) -> String {
    match z {
        ZoneRedundancy::Maximum => "maximum".to_string(),
        ZoneRedundancy::AtLeast(k) => format!("at least {k}"),
    }
}

fn parameters(p: &LayoutParameters) -> String {
    format!(
        "replication factor {}, zone redundancy {}",
        p.replication_factor,
        zone_redundancy(p.zone_redundancy)
    )
}

fn capacity(c: Option<u64>) -> String {
    c.map_or_else(|| "gateway".to_string(), format_bytes)
}

/// The current layout: parameters, sizes, and one row per node with a role.
fn render_layout(layout: &GetClusterLayoutResponse) -> String {
    let mut out = format!("==== CURRENT LAYOUT (version {}) ====\n", layout.version);
    out.push_str(&format!("Parameters: {}\n", parameters(&layout.parameters)));
    if layout.version == 0 {
        out.push_str("No layout applied yet: no node stores data.\n");
        return out;
    }
    out.push_str(&format!(
        "Partition size: {}; usable capacity: {}\n\n",
        format_bytes(layout.partition_size),
        format_bytes(layout.partition_size * PARTITION_COUNT as u64)
    ));
    let rows: Vec<Vec<String>> = layout
        .roles
        .iter()
        .map(|r| {
            vec![
                short_id(&r.id).to_string(),
                r.zone.clone(),
                capacity(r.capacity),
                r.stored_partitions.to_string(),
                r.usable_capacity
                    .map_or_else(|| "-".to_string(), format_bytes),
                list(&r.tags),
            ]
        })
        .collect();
    out.push_str(&render(
        &["ID", "ZONE", "CAPACITY", "PARTITIONS", "USABLE", "TAGS"],
        &rows,
    ));
    for r in &layout.roles {
        if let Some(c) = r.capacity.filter(|&c| c > 0 && r.stored_partitions == 0) {
            out.push_str(&idle_node_warning(
                short_id(&r.id),
                c,
                layout.partition_size,
            ));
            out.push('\n');
        }
    }
    out
}

/// The staged changes: parameters, then one row per node.
fn render_staged(layout: &GetClusterLayoutResponse) -> String {
    if !has_staged(layout) {
        return "No staged changes.\n".to_string();
    }
    let mut out = "==== STAGED CHANGES ====\n".to_string();
    if let Some(p) = &layout.staged_parameters {
        out.push_str(&format!("Parameters: {}\n", parameters(p)));
    }
    if !layout.staged_role_changes.is_empty() {
        let rows: Vec<Vec<String>> = layout
            .staged_role_changes
            .iter()
            .map(|c| match &c.action {
                RoleChangeAction::Remove => vec![short_id(&c.id).to_string(), "remove".into()],
                RoleChangeAction::Set {
                    zone,
                    capacity: cap,
                    tags,
                } => vec![
                    short_id(&c.id).to_string(),
                    "set".into(),
                    zone.clone(),
                    capacity(*cap),
                    list(tags),
                ],
            })
            .collect();
        out.push_str(&render(
            &["ID", "CHANGE", "ZONE", "CAPACITY", "TAGS"],
            &rows,
        ));
    }
    out
}

/// The versions kept, oldest first.
fn render_history(history: &GetClusterLayoutHistoryResponse) -> String {
    let rows: Vec<Vec<String>> = history
        .versions
        .iter()
        .map(|v| {
            vec![
                v.version.to_string(),
                v.status.clone(),
                v.storage_nodes.to_string(),
                v.gateway_nodes.to_string(),
                v.parameters.replication_factor.to_string(),
                zone_redundancy(v.parameters.zone_redundancy),
                format_bytes(v.usable_capacity),
            ]
        })
        .collect();
    let mut out = render(
        &[
            "VERSION",
            "STATUS",
            "STORAGE NODES",
            "GATEWAYS",
            "REPLICATION",
            "ZONE REDUNDANCY",
            "USABLE CAPACITY",
        ],
        &rows,
    );
    if !history.update_trackers.is_empty() {
        // Each node's progress through the versions (layout transitions).
        let rows: Vec<Vec<String>> = history
            .update_trackers
            .iter()
            .map(|(node, t)| {
                vec![
                    node.chars().take(16).collect(),
                    t.ack.to_string(),
                    t.sync.to_string(),
                    t.sync_ack.to_string(),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&render(&["NODE", "ACK", "SYNC", "SYNC ACK"], &rows));
    }
    out
}

#[cfg(test)]
mod tests {
    use hangar_api_admin::api::LayoutNodeRole;

    use super::*;

    #[test]
    fn zone_redundancy_parses() {
        assert_eq!(
            parse_zone_redundancy("maximum"),
            Ok(ZoneRedundancy::Maximum)
        );
        assert_eq!(parse_zone_redundancy("MAX"), Ok(ZoneRedundancy::Maximum));
        assert_eq!(parse_zone_redundancy("2"), Ok(ZoneRedundancy::AtLeast(2)));
        assert!(parse_zone_redundancy("0").is_err());
        assert!(parse_zone_redundancy("minimum").is_err());
        assert!(parse_zone_redundancy("-1").is_err());
    }

    #[test]
    fn layout_and_staged_changes_render() {
        let params = LayoutParameters {
            zone_redundancy: ZoneRedundancy::AtLeast(2),
            replication_factor: 3,
        };
        let layout = GetClusterLayoutResponse {
            version: 2,
            roles: vec![LayoutNodeRole {
                id: "a".repeat(64),
                zone: "dc1".into(),
                capacity: Some(2_000_000_000_000),
                stored_partitions: 256,
                usable_capacity: Some(1_000_000_000_000),
                tags: vec!["rack1".into()],
            }],
            parameters: params,
            partition_size: 3_906_250_000,
            staged_role_changes: vec![
                NodeRoleChange {
                    id: "a".repeat(64),
                    action: RoleChangeAction::Remove,
                },
                NodeRoleChange {
                    id: "b".repeat(64),
                    action: RoleChangeAction::Set {
                        zone: "dc2".into(),
                        capacity: None,
                        tags: vec![],
                    },
                },
            ],
            staged_parameters: Some(params),
        };
        let shown = render_layout(&layout);
        assert!(shown.contains("version 2"), "{shown}");
        assert!(shown.contains("usable capacity: 1.00 TB"), "{shown}");
        let row = shown
            .lines()
            .find(|l| l.starts_with(&"a".repeat(16)))
            .expect("row");
        for cell in ["dc1", "2.00 TB", "256", "1.00 TB", "rack1"] {
            assert!(row.contains(cell), "{cell} in {row}");
        }
        let staged = render_staged(&layout);
        assert!(
            staged.contains("replication factor 3, zone redundancy at least 2"),
            "{staged}"
        );
        assert!(staged.contains("remove"), "{staged}");
        assert!(staged.contains("gateway"), "{staged}");
        assert!(!shown.contains("Warning"), "{shown}");
    }

    #[test]
    fn a_node_with_capacity_and_no_partition_is_pointed_out() {
        let role = |id: &str, capacity: u64, stored_partitions: usize| LayoutNodeRole {
            id: id.repeat(64),
            zone: "dc1".into(),
            capacity: Some(capacity),
            stored_partitions,
            usable_capacity: Some(0),
            tags: vec![],
        };
        let layout = GetClusterLayoutResponse {
            version: 3,
            roles: vec![
                role("a", 2_000_000_000_000, 256),
                role("b", 1_000_000_000, 0),
            ],
            parameters: LayoutParameters {
                zone_redundancy: ZoneRedundancy::Maximum,
                replication_factor: 1,
            },
            partition_size: 3_906_250_000,
            staged_role_changes: vec![],
            staged_parameters: None,
        };
        let shown = render_layout(&layout);
        let warning = shown
            .lines()
            .find(|l| l.starts_with("Warning"))
            .expect("a warning");
        assert!(warning.contains(&"b".repeat(16)), "{warning}");
        assert!(
            warning.contains("1.00 GB") && warning.contains("3.91 GB"),
            "{warning}"
        );
        assert_eq!(shown.matches("Warning").count(), 1, "{shown}");
    }
}
