//! `hangar server`: opens the stores, starts the endpoints and background
//! workers, and stops them in order on SIGTERM or Ctrl-C.

use std::time::Duration;

use anyhow::Context;
use hangar_block::{BlockStore, BlockStoreConfig};
use hangar_cluster::history::LayoutParams;
use hangar_cluster::history::NodeRole;
use hangar_cluster::membership::MembershipConfig;
use hangar_cluster::{ClusterConfig, NodeId, System};
use hangar_db::{Db, DbConfig, Durability};
use hangar_model::workers::WorkerSettings;
use hangar_model::{ModelConfig, ObjectService};
use hangar_table::Replicator;
use hangar_util::clock::Clock;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::Config;

/// Zone of a single node's layout.
const SINGLE_NODE_ZONE: &str = "dc1";
/// Capacity of a single node's layout role. Capacities only weigh nodes
/// against each other: alone, a node holds everything whatever its number
/// (change it with `hangar layout assign` when other nodes join).
const SINGLE_NODE_CAPACITY: u64 = 1 << 40;

/// A running server's endpoints.
pub struct Running {
    /// S3 address actually bound.
    pub s3_addr: std::net::SocketAddr,
    /// Admin address actually bound.
    pub admin_addr: std::net::SocketAddr,
    /// The object service.
    pub model: ObjectService,
    /// This node's id.
    pub node: NodeId,
    /// Node-to-node address.
    pub rpc_addr: std::net::SocketAddr,
}

/// Opens everything and starts serving; returns once both endpoints listen.
pub async fn start(
    config: &Config,
    shutdown: CancellationToken,
) -> anyhow::Result<(Running, tokio::task::JoinSet<()>)> {
    std::fs::create_dir_all(&config.metadata_dir)
        .with_context(|| format!("creating {}", config.metadata_dir.display()))?;
    restore_identity(config)?;
    let db_path = config.metadata_dir.join("meta.redb");
    // A node whose data directories hold blocks but whose database is gone
    // (deleted, or lost with its disk) rebuilds its metadata from its peers.
    let rebuilding = !db_path.exists() && data_dirs_hold_blocks(config);
    let clock = Clock::system();
    let cluster = System::start(
        &ClusterConfig {
            metadata_dir: config.metadata_dir.clone(),
            rpc_secret: config.rpc_secret.clone(),
            rpc_bind_addr: config.rpc_bind_addr,
            rpc_public_addr: config.rpc_public_addr,
            congestion: config.rpc_congestion,
            bulk_cpu_priority: config.rpc_bulk_cpu_priority,
            bootstrap_peers: config.bootstrap_peers.clone(),
            initial_params: LayoutParams {
                replication_factor: config.replication_factor,
                ..LayoutParams::default()
            },
            membership: MembershipConfig::default(),
        },
        clock.clone(),
    )
    .with_context(|| format!("starting the cluster endpoint on {}", config.rpc_bind_addr))?;
    let node = cluster.id();
    cluster.set_consistency_mode(config.consistency_mode);
    if config.consistency_mode != hangar_cluster::ConsistencyMode::Consistent {
        warn!(mode = %config.consistency_mode, "consistency mode relaxed: reads may miss recent writes{}",
            if config.consistency_mode == hangar_cluster::ConsistencyMode::Dangerous { ", and acknowledged writes may be lost" } else { "" });
    }
    keep_identity_copies(config);
    let db = Db::open(
        &db_path,
        &DbConfig {
            durability: if config.metadata_fsync {
                Durability::Fsync
            } else {
                Durability::NoFsync
            },
            cache_size_bytes: config.metadata_cache_size_bytes,
            ..DbConfig::default()
        },
    )
    .context("opening the metadata database")?;
    let blocks = BlockStore::new(
        BlockStoreConfig {
            data_dirs: config
                .data_dirs
                .iter()
                .map(|d| hangar_block::DataDir {
                    path: d.path.clone(),
                    capacity: d.capacity,
                })
                .collect(),
            compression_level: config.compression_level,
            fsync: config.data_fsync,
            gc_delay_msec: config.block_gc_delay_secs * 1000,
        },
        db.clone(),
        clock.clone(),
    )
    .context("opening data directories")?;
    if config.single_node {
        claim_whole_layout(&cluster)?;
    }
    let replicator = Replicator::new(cluster.clone());
    let model = ObjectService::new(
        ModelConfig {
            block_size: config.block_size,
            inline_threshold: config.inline_threshold,
            upload_buffer_bytes: config.upload_buffer_bytes,
            release_delay_msec: config.block_gc_delay_secs.min(300) * 1000,
            // Asking the replicas again when they could not all answer:
            // every minute, sooner if the delay itself is short.
            release_retry_msec: config.block_gc_delay_secs.clamp(1, 60) * 1000,
            body_idle_timeout: Duration::from_secs(config.body_idle_timeout_secs),
            ..ModelConfig::default()
        },
        db,
        blocks,
        &replicator,
        clock,
    );
    if rebuilding {
        warn!("the metadata database is missing: rebuilding it from the other nodes");
        tokio::spawn(rebuild_metadata(model.clone(), cluster.clone()));
    }
    model
        .recover_interrupted_uploads()
        .await
        .context("recovering interrupted uploads")?;

    let s3_listener = TcpListener::bind(config.s3_bind_addr)
        .await
        .with_context(|| format!("binding the S3 endpoint to {}", config.s3_bind_addr))?;
    let admin_listener = TcpListener::bind(config.admin_bind_addr)
        .await
        .with_context(|| format!("binding the admin endpoint to {}", config.admin_bind_addr))?;
    let running = Running {
        s3_addr: s3_listener.local_addr()?,
        admin_addr: admin_listener.local_addr()?,
        model: model.clone(),
        node,
        rpc_addr: cluster.rpc_addr(),
    };
    let s3_endpoint = hangar_api_s3::build_endpoint(
        model.clone(),
        hangar_api_s3::S3Settings {
            region: config.region.clone(),
            pinned_region: config.pin_region.then(|| config.region.clone()),
            root_domain: config.root_domain.clone(),
        },
    )
    .map_err(|e| anyhow::anyhow!("s3_api.root_domain: {e:?}"))?;

    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(hangar_api_s3::serve(
        s3_listener,
        s3_endpoint,
        shutdown.clone(),
    ));
    let token = config.admin_token.clone();
    let (m, c, s) = (model.clone(), cluster.clone(), shutdown.clone());
    tasks.spawn(async move {
        if let Err(e) = hangar_api_admin::serve(admin_listener, m, c, token, s).await {
            warn!(error = %e, "admin endpoint stopped");
        }
    });
    for worker in model.spawn_workers(WorkerSettings::default(), rebuilding, &shutdown) {
        tasks.spawn(async move {
            if let Err(e) = worker.await {
                warn!(error = %e, "a background worker stopped");
            }
        });
    }
    tasks.spawn(async move {
        shutdown.cancelled().await;
        cluster.shutdown();
    });
    info!(node = %node, rpc = %running.rpc_addr, s3 = %running.s3_addr, admin = %running.admin_addr, "hangar is serving");
    Ok((running, tasks))
}

/// Name of the copy of the node's identity kept in each data directory.
const IDENTITY_COPY: &str = "node_key.copy";

/// Restores the node's identity from a data directory when the metadata
/// directory lost it: the node comes back as itself, not as a stranger.
fn restore_identity(config: &Config) -> anyhow::Result<()> {
    let key = config.metadata_dir.join(hangar_net::KEY_FILE);
    if key.exists() {
        return Ok(());
    }
    for dir in &config.data_dirs {
        let copy = dir.path.join(IDENTITY_COPY);
        if let Ok(bytes) = std::fs::read(&copy) {
            crate::write_atomically(&key, &bytes)?;
            warn!(from = %copy.display(), "the node key was missing from the metadata directory; restored it from a data directory");
            return Ok(());
        }
    }
    Ok(())
}

/// Keeps a copy of the node's identity in each data directory.
fn keep_identity_copies(config: &Config) {
    let key = config.metadata_dir.join(hangar_net::KEY_FILE);
    let Ok(bytes) = std::fs::read(&key) else {
        return;
    };
    for dir in &config.data_dirs {
        let copy = dir.path.join(IDENTITY_COPY);
        if std::fs::read(&copy).ok().as_deref() != Some(&bytes[..]) {
            if let Err(e) = std::fs::create_dir_all(&dir.path).and_then(|()| {
                crate::write_atomically(&copy, &bytes).map_err(std::io::Error::other)
            }) {
                warn!(path = %copy.display(), error = %e, "cannot keep a copy of the node key");
            }
        }
    }
}

/// Whether some data directory holds block files.
fn data_dirs_hold_blocks(config: &Config) -> bool {
    config.data_dirs.iter().any(|d| {
        std::fs::read_dir(&d.path).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        })
    })
}

/// Pulls every table from the other replicas until a pass succeeds: the
/// block references that come back restore the reference counts and queue
/// the blocks for a check.
async fn rebuild_metadata(model: ObjectService, cluster: std::sync::Arc<System>) {
    let started = tokio::time::Instant::now();
    // The layout file went with the database: wait to learn it from a peer.
    while cluster.layout().snapshot().current().version == 0 {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    loop {
        let failed = model.sync_tables().await;
        if failed == 0 {
            break;
        }
        warn!(
            failed,
            "metadata rebuild: some partitions could not be synced yet; retrying"
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    if let Err(e) = model.blocks().queue_all_for_resync().await {
        warn!(error = %e, "metadata rebuild: cannot queue the blocks for a check");
    }
    info!(
        secs = started.elapsed().as_secs(),
        "metadata rebuilt from the other nodes"
    );
}

/// Single-node mode: before the first layout is applied, gives this node
/// every partition (replication factor 1), so that it serves at once. A
/// cluster built later from it changes this layout like any other.
fn claim_whole_layout(cluster: &System) -> anyhow::Result<()> {
    if cluster.layout().snapshot().current().version > 0 {
        return Ok(());
    }
    let id = cluster.id();
    let capacity = SINGLE_NODE_CAPACITY;
    cluster
        .layout()
        .update(|h, ts| {
            h.stage_role(
                id,
                NodeRole::storage(SINGLE_NODE_ZONE.to_string(), capacity),
                ts,
            )?;
            h.apply(Some(1), ts.saturating_add(1))
        })
        .context("applying the single-node layout")?;
    info!(node = %id, "single-node mode: this node holds every partition (layout version 1)");
    Ok(())
}

/// The default key of single-node mode: the key named `default`, created with
/// the right to create buckets on first start.
pub async fn default_key(
    model: &ObjectService,
) -> anyhow::Result<hangar_model::schema::access_key::AccessKey> {
    if let Some(k) = model
        .list_keys()
        .await?
        .into_iter()
        .find(|k| k.name.get() == "default")
    {
        return Ok(k);
    }
    let k = model.create_key("default").await?;
    Ok(model.update_key(&k.id, None, Some(true)).await?)
}

/// Shared so the signal handler and the server see the same token.
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    warn!(error = %e, "cannot listen for SIGTERM");
                    return;
                }
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        info!("shutting down");
        t.cancel();
    });
    token
}
