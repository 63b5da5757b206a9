//! The `hangar` binary: `hangar server` runs a node; `hangar key ...`,
//! `hangar bucket ...`, `hangar node ...`, `hangar status` and
//! `hangar layout ...` are clients of a node's admin API.

#[macro_use]
mod output;
mod cli;
mod config;
mod server;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::cli::{
    AdminTarget, BucketCommand, KeyCommand, LayoutCommand, NodeCommand, RepairWhat, WorkerCommand,
};
use crate::config::RawConfig;

/// jemalloc, configured in `.cargo/config.toml` to hand freed memory back to the
/// system within a second, where the system allocator kept a load's peak for
/// good (decision 003).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Hangar: a lightweight geo-distributed object store speaking S3.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs a node. Without --config, runs a single node on embedded defaults
    /// under --data-dir and prints its endpoint and credentials.
    Server(ServerArgs),
    /// Manages access keys (through the admin API).
    Key {
        #[command(flatten)]
        target: AdminTarget,
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Manages buckets (through the admin API).
    Bucket {
        #[command(flatten)]
        target: AdminTarget,
        #[command(subcommand)]
        command: BucketCommand,
    },
    /// Shows this node's id and connects it to other nodes (through the admin
    /// API).
    Node {
        #[command(flatten)]
        target: AdminTarget,
        #[command(subcommand)]
        command: NodeCommand,
    },
    /// Shows the cluster's health and every node known: zone, capacity,
    /// partitions, up or down, round-trip time, layout version (through the
    /// admin API).
    Status {
        #[command(flatten)]
        target: AdminTarget,
    },
    /// Manages the cluster layout: node roles, replication factor and zone
    /// redundancy are staged, shown, then applied (through the admin API).
    Layout {
        #[command(flatten)]
        target: AdminTarget,
        #[command(subcommand)]
        command: LayoutCommand,
    },
    /// Shows the node's background workers: resync, scrub, layout sync,
    /// release (through the admin API).
    Worker {
        #[command(flatten)]
        target: AdminTarget,
        #[command(subcommand)]
        command: WorkerCommand,
    },
    /// Starts a repair on the node; safe at any time (through the admin API).
    Repair {
        #[command(flatten)]
        target: AdminTarget,
        /// What to repair.
        #[arg(value_enum)]
        what: RepairWhat,
    },
}

#[derive(Debug, clap::Args)]
struct ServerArgs {
    /// Configuration file (TOML). Without it: single-node mode.
    #[arg(long, short, env = "HANGAR_CONFIG")]
    config: Option<PathBuf>,
    /// Single-node mode: where everything is stored.
    #[arg(long, default_value = "hangar-data", conflicts_with = "config")]
    data_dir: PathBuf,
    /// Single-node mode: S3 listen address.
    #[arg(long, default_value = "127.0.0.1:3900", conflicts_with = "config")]
    s3_addr: SocketAddr,
    /// Single-node mode: admin listen address.
    #[arg(long, default_value = "127.0.0.1:3903", conflicts_with = "config")]
    admin_addr: SocketAddr,
    /// Single-node mode: node-to-node (QUIC) listen address.
    #[arg(long, default_value = "127.0.0.1:3901", conflicts_with = "config")]
    rpc_addr: SocketAddr,
    /// Single-node mode: create this bucket (for the default key) if missing.
    #[arg(long, conflicts_with = "config")]
    bucket: Option<String>,
    /// Single-node mode: do not fsync metadata commits and block files. A crash
    /// of the machine may then lose the last seconds of acknowledged writes.
    #[arg(long, conflicts_with = "config")]
    no_fsync: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match cli.command {
        Command::Server(args) => {
            init_logging();
            install_panic_hook();
            runtime.block_on(run_server(args))
        }
        Command::Key { target, command } => runtime.block_on(cli::run_key(target, command)),
        Command::Bucket { target, command } => runtime.block_on(cli::run_bucket(target, command)),
        Command::Node { target, command } => runtime.block_on(cli::run_node(target, command)),
        Command::Status { target } => runtime.block_on(cli::run_status(target)),
        Command::Layout { target, command } => runtime.block_on(cli::run_layout(target, command)),
        Command::Worker { target, command } => runtime.block_on(cli::run_worker(target, command)),
        Command::Repair { target, what } => runtime.block_on(cli::run_repair(target, what)),
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`), coloured only on
/// a terminal. The s3s protocol library logs every failed request at ERROR,
/// client errors included; its lines stay off unless `RUST_LOG` names it
/// (the S3 endpoint logs each request itself, at the level its status calls for).
fn init_logging() {
    use std::io::IsTerminal as _;
    let spec = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_string());
    let spec = if spec.contains("s3s") {
        spec
    } else {
        format!("{spec},s3s=off")
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&spec)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,s3s=off"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

/// A panic is a bug: log it and abort rather than limp on with broken state.
fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!(panic = %info, "panic; aborting");
        default(info);
        std::process::abort();
    }));
}

async fn run_server(args: ServerArgs) -> anyhow::Result<()> {
    let single_node = args.config.is_none();
    let raw = match &args.config {
        Some(path) => RawConfig::from_file(path)?,
        None => {
            let mut raw = RawConfig::single_node(&args.data_dir, args.s3_addr, args.admin_addr);
            raw.rpc_bind_addr = args.rpc_addr;
            raw.metadata_fsync = !args.no_fsync;
            raw.data_fsync = !args.no_fsync;
            raw
        }
    };
    let token_dir = raw.metadata_dir.clone();
    let config = raw.validate(
        || stored_admin_token(&token_dir),
        || stored_rpc_secret(&token_dir),
    )?;
    let shutdown = server::shutdown_on_signals();
    let (running, mut tasks) = server::start(&config, shutdown.clone()).await?;
    if single_node {
        announce(&args, &config, &running).await?;
    }
    while tasks.join_next().await.is_some() {
        // Every task ends only on shutdown; stop the others if one ends early.
        shutdown.cancel();
    }
    tracing::info!("stopped");
    Ok(())
}

/// The admin token of a node without one in its config: generated once, kept
/// in the metadata directory.
fn stored_admin_token(dir: &Path) -> anyhow::Result<String> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("admin_token");
    if let Ok(t) = std::fs::read_to_string(&path) {
        return Ok(t.trim().to_string());
    }
    let t = hangar_util::Uuid::random().to_hex() + &hangar_util::Uuid::random().to_hex();
    write_atomically(&path, t.as_bytes())?;
    Ok(t)
}

/// The cluster secret of a node without one in its config: generated once,
/// kept in the metadata directory. Nodes of one cluster must share it, so a
/// node joining others needs `rpc_secret` or `rpc_secret_file` instead.
fn stored_rpc_secret(dir: &Path) -> anyhow::Result<String> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("rpc_secret");
    if let Ok(t) = std::fs::read_to_string(&path) {
        return Ok(t.trim().to_string());
    }
    let secret = hangar_net::RpcSecret::generate().to_hex();
    write_atomically(&path, secret.as_bytes())?;
    tracing::info!(path = %path.display(), "generated a cluster secret; other nodes joining this one need it as rpc_secret");
    Ok(secret)
}

/// Writes `bytes` to `path` through a temporary file, readable by the owner
/// only (tokens, secrets and credentials go through here).
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Single-node mode: ensures the default key (and bucket), prints how to
/// connect, and writes the same as JSON to `<data_dir>/ready.json`.
async fn announce(
    args: &ServerArgs,
    config: &config::Config,
    running: &server::Running,
) -> anyhow::Result<()> {
    let key = server::default_key(&running.model).await?;
    if let Some(b) = &args.bucket {
        match running.model.resolve_bucket(b, Some(&key)).await {
            Ok(_) => {}
            Err(_) => {
                running
                    .model
                    .create_bucket(b, Some(&key))
                    .await
                    .with_context(|| format!("creating bucket {b}"))?;
            }
        }
    }
    let s3 = format!("http://{}", running.s3_addr);
    let admin = format!("http://{}", running.admin_addr);
    let mut banner = format!(
        "Hangar is running (single node, data in {})\n",
        args.data_dir.display()
    );
    banner += &format!("  S3 endpoint:       {s3}\n");
    banner += &format!("  region:            {}\n", config.region);
    banner += &format!("  access key id:     {}\n", key.id);
    banner += &format!("  secret access key: {}\n", key.secret);
    if let Some(b) = &args.bucket {
        banner += &format!("  bucket:            {b}\n");
    }
    banner += &format!(
        "  admin endpoint:    {admin} (token in {})\n",
        config.metadata_dir.join("admin_token").display()
    );
    banner += &format!(
        "  node:              {}@{}\n",
        running.node.to_hex(),
        running.rpc_addr
    );
    banner += &format!("Try: AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={} aws --endpoint-url {s3} --region {} s3 ls\n", key.id, key.secret, config.region);
    // A server whose stdout was closed keeps serving: the banner is a courtesy.
    let mut stdout = std::io::stdout().lock();
    let _ = std::io::Write::write_all(&mut stdout, banner.as_bytes())
        .and_then(|()| std::io::Write::flush(&mut stdout));
    drop(stdout);
    let ready = serde_json::json!({
        "s3_endpoint": s3,
        "admin_endpoint": admin,
        "region": config.region,
        "access_key_id": key.id,
        "secret_access_key": key.secret,
        "admin_token": config.admin_token,
        "node_id": running.node.to_hex(),
        "rpc_addr": running.rpc_addr.to_string(),
        "bucket": args.bucket,
    });
    write_atomically(
        &args.data_dir.join("ready.json"),
        ready.to_string().as_bytes(),
    )
}
