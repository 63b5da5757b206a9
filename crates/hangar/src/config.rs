//! Configuration: the TOML file ([`RawConfig`], unknown keys refused) becomes a
//! validated [`Config`]. Without a file, [`RawConfig::single_node`] gives embedded
//! defaults under one data directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use hangar_cluster::membership::BootstrapPeer;
use hangar_net::quic::{BulkCpuPriority, Congestion};
use hangar_net::RpcSecret;
use serde::Deserialize;

/// The configuration file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Directory of the metadata database and node identity.
    pub metadata_dir: PathBuf,
    /// Block data directories (one or more).
    pub data_dir: DataDirs,
    /// fsync metadata commits before acknowledging writes.
    #[serde(default = "yes")]
    pub metadata_fsync: bool,
    /// fsync block files before acknowledging writes.
    #[serde(default = "yes")]
    pub data_fsync: bool,
    /// Size objects are cut into.
    #[serde(default = "default_block_size")]
    pub block_size_bytes: usize,
    /// Objects up to this size are stored in metadata.
    #[serde(default = "default_inline")]
    pub inline_threshold_bytes: usize,
    /// zstd level for blocks (0 = no compression).
    #[serde(default = "default_compression")]
    pub compression_level: i32,
    /// Delay before an unreferenced block is deleted.
    #[serde(default = "default_gc_delay")]
    pub block_gc_delay_secs: u64,
    /// Metadata engine cache.
    #[serde(default = "default_cache")]
    pub metadata_cache_size_bytes: usize,
    /// Memory for block buffers of all uploads together.
    #[serde(default = "default_upload_buffer")]
    pub upload_buffer_bytes: usize,
    /// A request body idle for this long fails (RequestTimeout).
    #[serde(default = "default_body_idle_timeout")]
    pub body_idle_timeout_secs: u64,
    /// The cluster secret (64 hex characters), shared by every node.
    pub rpc_secret: Option<String>,
    /// File holding the cluster secret.
    pub rpc_secret_file: Option<PathBuf>,
    /// UDP address of the node-to-node endpoint (QUIC).
    #[serde(default = "default_rpc_bind")]
    pub rpc_bind_addr: SocketAddr,
    /// Address other nodes should use, if not `rpc_bind_addr`.
    pub rpc_public_addr: Option<SocketAddr>,
    /// Congestion control between nodes: `bbr` (default) or `cubic`.
    #[serde(default = "default_congestion")]
    pub rpc_congestion: String,
    /// CPU priority of block transfers between nodes: `idle` (default) or
    /// `normal`.
    #[serde(default = "default_bulk_cpu_priority")]
    pub rpc_bulk_cpu_priority: String,
    /// Quorums of this node's reads and writes: `consistent` (default),
    /// `degraded` or `dangerous`.
    #[serde(default = "default_consistency")]
    pub consistency_mode: String,
    /// Peers to contact at start: `<node id>@<host:port>`.
    #[serde(default)]
    pub bootstrap_peers: Vec<String>,
    /// Copies of each partition in the layout of a new cluster (afterwards a
    /// layout parameter, changed with `hangar layout config`).
    #[serde(default = "default_replication_factor")]
    pub replication_factor: usize,
    /// Single-node mode (no configuration file): the node gives itself the
    /// whole layout at its first start.
    #[serde(skip)]
    pub single_node: bool,
    /// S3 endpoint.
    pub s3_api: RawS3,
    /// Admin endpoint.
    pub admin: RawAdmin,
}

/// One data directory, or several with capacities.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum DataDirs {
    /// A single directory.
    One(PathBuf),
    /// Several directories sharing blocks by capacity.
    Many(Vec<RawDataDir>),
}

/// A data directory with its capacity.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDataDir {
    /// Path.
    pub path: PathBuf,
    /// Capacity in bytes (relative weight).
    pub capacity_bytes: u64,
}

/// `[s3_api]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawS3 {
    /// Listen address.
    pub bind_addr: SocketAddr,
    /// Region name.
    #[serde(default = "default_region")]
    pub region: String,
    /// Refuse bucket creation for another region.
    #[serde(default)]
    pub pin_region: bool,
    /// Root domain for virtual-host-style requests.
    pub root_domain: Option<String>,
}

/// `[admin]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// Listen address.
    pub bind_addr: SocketAddr,
    /// Bearer token.
    pub admin_token: Option<String>,
    /// File holding the bearer token.
    pub admin_token_file: Option<PathBuf>,
}

fn yes() -> bool {
    true
}
fn default_block_size() -> usize {
    1 << 20
}
fn default_inline() -> usize {
    4096
}
fn default_compression() -> i32 {
    1
}
fn default_gc_delay() -> u64 {
    600
}
fn default_cache() -> usize {
    32 << 20
}
fn default_upload_buffer() -> usize {
    32 << 20
}
fn default_body_idle_timeout() -> u64 {
    60
}
fn default_rpc_bind() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 3901))
}
fn default_congestion() -> String {
    "bbr".into()
}
fn default_bulk_cpu_priority() -> String {
    "idle".into()
}
fn default_consistency() -> String {
    "consistent".into()
}
fn default_replication_factor() -> usize {
    3
}
fn default_region() -> String {
    "hangar".into()
}

/// A data directory, validated.
#[derive(Clone, Debug)]
pub struct DataDir {
    /// Path.
    pub path: PathBuf,
    /// Capacity weight.
    pub capacity: u64,
}

/// The validated configuration.
#[derive(Clone)]
pub struct Config {
    /// Metadata directory.
    pub metadata_dir: PathBuf,
    /// Data directories.
    pub data_dirs: Vec<DataDir>,
    /// fsync metadata.
    pub metadata_fsync: bool,
    /// fsync blocks.
    pub data_fsync: bool,
    /// Block size.
    pub block_size: usize,
    /// Inline threshold.
    pub inline_threshold: usize,
    /// zstd level, if compressing.
    pub compression_level: Option<i32>,
    /// GC delay.
    pub block_gc_delay_secs: u64,
    /// Metadata cache.
    pub metadata_cache_size_bytes: usize,
    /// Upload buffer budget.
    pub upload_buffer_bytes: usize,
    /// Request body idle timeout.
    pub body_idle_timeout_secs: u64,
    /// S3 listen address.
    pub s3_bind_addr: SocketAddr,
    /// Region.
    pub region: String,
    /// Region pinned.
    pub pin_region: bool,
    /// Virtual-host root domain.
    pub root_domain: Option<String>,
    /// Admin listen address.
    pub admin_bind_addr: SocketAddr,
    /// Admin token.
    pub admin_token: String,
    /// Cluster secret.
    pub rpc_secret: RpcSecret,
    /// Node-to-node listen address.
    pub rpc_bind_addr: SocketAddr,
    /// Node-to-node public address.
    pub rpc_public_addr: Option<SocketAddr>,
    /// Congestion control between nodes.
    pub rpc_congestion: Congestion,
    /// CPU priority of block transfers between nodes.
    pub rpc_bulk_cpu_priority: BulkCpuPriority,
    /// Quorums of this node's reads and writes.
    pub consistency_mode: hangar_cluster::ConsistencyMode,
    /// Bootstrap peers.
    pub bootstrap_peers: Vec<BootstrapPeer>,
    /// Replication factor of a new cluster's layout.
    pub replication_factor: usize,
    /// Single-node mode: the node gives itself the whole layout at its
    /// first start.
    pub single_node: bool,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("metadata_dir", &self.metadata_dir)
            .field("data_dirs", &self.data_dirs)
            .field("s3_bind_addr", &self.s3_bind_addr)
            .field("admin_bind_addr", &self.admin_bind_addr)
            .field("admin_token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl RawConfig {
    /// Reads and parses a config file.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("in {}", path.display()))
    }

    /// Embedded defaults for a single node keeping everything under `data_dir`.
    pub fn single_node(data_dir: &Path, s3: SocketAddr, admin: SocketAddr) -> Self {
        RawConfig {
            metadata_dir: data_dir.join("meta"),
            data_dir: DataDirs::One(data_dir.join("blocks")),
            metadata_fsync: true,
            data_fsync: true,
            block_size_bytes: default_block_size(),
            inline_threshold_bytes: default_inline(),
            compression_level: default_compression(),
            block_gc_delay_secs: default_gc_delay(),
            metadata_cache_size_bytes: default_cache(),
            upload_buffer_bytes: default_upload_buffer(),
            body_idle_timeout_secs: default_body_idle_timeout(),
            rpc_secret: None,
            rpc_secret_file: None,
            rpc_bind_addr: SocketAddr::from(([127, 0, 0, 1], 3901)),
            rpc_public_addr: None,
            rpc_congestion: default_congestion(),
            rpc_bulk_cpu_priority: default_bulk_cpu_priority(),
            consistency_mode: default_consistency(),
            bootstrap_peers: Vec::new(),
            replication_factor: 1,
            single_node: true,
            s3_api: RawS3 {
                bind_addr: s3,
                region: default_region(),
                pin_region: false,
                root_domain: None,
            },
            admin: RawAdmin {
                bind_addr: admin,
                admin_token: None,
                admin_token_file: None,
            },
        }
    }

    /// Validates; `generated_token` and `generated_secret` are used when no
    /// admin token or cluster secret is configured.
    pub fn validate(
        self,
        generated_token: impl FnOnce() -> anyhow::Result<String>,
        generated_secret: impl FnOnce() -> anyhow::Result<String>,
    ) -> anyhow::Result<Config> {
        if !self.block_size_bytes.is_power_of_two()
            || !(4096..=(64 << 20)).contains(&self.block_size_bytes)
        {
            bail!("block_size_bytes must be a power of two between 4096 and 67108864");
        }
        if self.inline_threshold_bytes >= self.block_size_bytes {
            bail!("inline_threshold_bytes must be below block_size_bytes");
        }
        if self.upload_buffer_bytes < self.block_size_bytes {
            bail!("upload_buffer_bytes must be at least block_size_bytes");
        }
        if !(1..=3600).contains(&self.body_idle_timeout_secs) {
            bail!("body_idle_timeout_secs must be between 1 and 3600");
        }
        if !(0..=19).contains(&self.compression_level) {
            bail!("compression_level must be between 0 (off) and 19");
        }
        let data_dirs = match self.data_dir {
            DataDirs::One(p) => vec![DataDir {
                path: p,
                capacity: 1,
            }],
            DataDirs::Many(v) if v.is_empty() => bail!("data_dir must name at least one directory"),
            DataDirs::Many(v) => v
                .into_iter()
                .map(|d| {
                    if d.capacity_bytes == 0 {
                        bail!(
                            "data_dir.capacity_bytes must be positive ({})",
                            d.path.display()
                        );
                    }
                    Ok(DataDir {
                        path: d.path,
                        capacity: d.capacity_bytes,
                    })
                })
                .collect::<anyhow::Result<_>>()?,
        };
        let admin_token = match (self.admin.admin_token, self.admin.admin_token_file) {
            (Some(_), Some(_)) => {
                bail!("admin.admin_token and admin.admin_token_file are exclusive")
            }
            (Some(t), None) => t,
            (None, Some(f)) => std::fs::read_to_string(&f)
                .with_context(|| format!("admin.admin_token_file: reading {}", f.display()))?
                .trim()
                .to_string(),
            (None, None) => generated_token()?,
        };
        if admin_token.len() < 16 {
            bail!("admin.admin_token must be at least 16 characters");
        }
        let rpc_secret = match (self.rpc_secret, self.rpc_secret_file) {
            (Some(_), Some(_)) => bail!("rpc_secret and rpc_secret_file are exclusive"),
            (Some(s), None) => s,
            (None, Some(f)) => std::fs::read_to_string(&f)
                .with_context(|| format!("rpc_secret_file: reading {}", f.display()))?,
            (None, None) => generated_secret()?,
        };
        let rpc_secret = RpcSecret::from_hex(&rpc_secret).context("rpc_secret")?;
        let bootstrap_peers = self
            .bootstrap_peers
            .iter()
            .map(|p| p.parse::<BootstrapPeer>().map_err(anyhow::Error::msg))
            .collect::<anyhow::Result<Vec<_>>>()
            .context("bootstrap_peers")?;
        let consistency_mode = self
            .consistency_mode
            .parse()
            .map_err(|e| anyhow::anyhow!("consistency_mode: {e}"))?;
        let rpc_congestion = match self.rpc_congestion.as_str() {
            "bbr" => Congestion::Bbr,
            "cubic" => Congestion::Cubic,
            other => bail!("rpc_congestion must be \"bbr\" or \"cubic\", not {other:?}"),
        };
        let rpc_bulk_cpu_priority: BulkCpuPriority = self
            .rpc_bulk_cpu_priority
            .parse()
            .context("rpc_bulk_cpu_priority")?;
        if !(1..=7).contains(&self.replication_factor) {
            bail!("replication_factor must be between 1 and 7");
        }
        if self
            .rpc_public_addr
            .is_some_and(|a| a.ip().is_unspecified() || a.port() == 0)
        {
            bail!("rpc_public_addr must be a reachable address with a port");
        }
        Ok(Config {
            metadata_dir: self.metadata_dir,
            data_dirs,
            metadata_fsync: self.metadata_fsync,
            data_fsync: self.data_fsync,
            block_size: self.block_size_bytes,
            inline_threshold: self.inline_threshold_bytes,
            compression_level: (self.compression_level > 0).then_some(self.compression_level),
            block_gc_delay_secs: self.block_gc_delay_secs,
            metadata_cache_size_bytes: self.metadata_cache_size_bytes,
            upload_buffer_bytes: self.upload_buffer_bytes,
            body_idle_timeout_secs: self.body_idle_timeout_secs,
            s3_bind_addr: self.s3_api.bind_addr,
            region: self.s3_api.region,
            pin_region: self.s3_api.pin_region,
            root_domain: self.s3_api.root_domain,
            admin_bind_addr: self.admin.bind_addr,
            admin_token,
            rpc_secret,
            rpc_bind_addr: self.rpc_bind_addr,
            rpc_public_addr: self.rpc_public_addr,
            rpc_congestion,
            rpc_bulk_cpu_priority,
            consistency_mode,
            bootstrap_peers,
            replication_factor: self.replication_factor,
            single_node: self.single_node,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
metadata_dir = "/tmp/m"
rpc_secret = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
bootstrap_peers = ["0000000000000000000000000000000000000000000000000000000000000001@10.0.0.2:3901"]
data_dir = [{ path = "/tmp/d1", capacity_bytes = 100 }, { path = "/tmp/d2", capacity_bytes = 300 }]
[s3_api]
bind_addr = "127.0.0.1:3900"
[admin]
bind_addr = "127.0.0.1:3903"
admin_token = "0123456789abcdef0123"
"#;

    #[test]
    fn a_full_example_parses_and_validates() {
        let c: RawConfig = toml::from_str(EXAMPLE).expect("parse");
        let c = c
            .validate(|| bail!("not needed"), || bail!("not needed"))
            .expect("valid");
        assert_eq!(c.data_dirs.len(), 2);
        assert!(c.metadata_fsync && c.data_fsync);
        assert!(!format!("{c:?}").contains("0123456789abcdef0123"));
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let text = EXAMPLE.replace("[s3_api]", "blok_size = 3\n[s3_api]");
        let e = toml::from_str::<RawConfig>(&text)
            .expect_err("must fail")
            .to_string();
        assert!(e.contains("blok_size"), "{e}");
    }

    #[test]
    fn block_size_must_be_a_power_of_two() {
        let text = EXAMPLE.replace("[s3_api]", "block_size_bytes = 3000000\n[s3_api]");
        let c: RawConfig = toml::from_str(&text).expect("parse");
        let e = c
            .validate(|| bail!("x"), || bail!("x"))
            .expect_err("invalid")
            .to_string();
        assert!(e.contains("block_size_bytes"), "{e}");
    }

    #[test]
    fn cluster_settings_are_checked() {
        for (from, to, word) in [
            (
                "rpc_secret = \"00112233",
                "rpc_secret = \"zz112233",
                "rpc_secret",
            ),
            ("@10.0.0.2:3901", "@10.0.0.2", "bootstrap_peers"),
            (
                "[s3_api]",
                "replication_factor = 0\n[s3_api]",
                "replication_factor",
            ),
        ] {
            let text = EXAMPLE.replace(from, to);
            let c: RawConfig = toml::from_str(&text).expect("parse");
            let e = format!(
                "{:#}",
                c.validate(|| bail!("x"), || bail!("x"))
                    .expect_err("invalid")
            );
            assert!(e.contains(word), "{e}");
        }
        let c: RawConfig = toml::from_str(EXAMPLE).expect("parse");
        let c = c.validate(|| bail!("x"), || bail!("x")).expect("valid");
        assert_eq!(c.bootstrap_peers.len(), 1);
        assert_eq!(c.rpc_bind_addr.port(), 3901);
    }
}
