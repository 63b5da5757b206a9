//! `hangar server`: opens the stores, starts the endpoints and background
//! workers, and stops them in order on SIGTERM or Ctrl-C.

use std::time::{Duration, SystemTime};

use anyhow::Context;
use hangar_block::{BlockStore, BlockStoreConfig};
use hangar_cluster::history::LayoutParams;
use hangar_cluster::history::NodeRole;
use hangar_cluster::membership::MembershipConfig;
use hangar_cluster::{ClusterConfig, NodeId, System};
use hangar_db::{Db, DbConfig, Durability};
use hangar_model::{ModelConfig, ObjectService};
use hangar_table::Replicator;
use hangar_util::clock::Clock;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::Config;

/// How often background maintenance runs when it has nothing to do.
const MAINTENANCE_IDLE_PERIOD: Duration = Duration::from_secs(1);
/// Block rows released per maintenance step.
const RELEASE_ROWS_PER_STEP: usize = 4096;
/// Blocks deleted per maintenance step.
const GC_BLOCKS_PER_STEP: usize = 1024;
/// How often the data directories are swept for crash leftovers after the
/// sweep that follows every start.
const SWEEP_PERIOD: Duration = Duration::from_secs(24 * 3600);
/// Age a file must have for a periodic sweep to touch it.
const SWEEP_MIN_AGE: Duration = Duration::from_secs(3600);
/// How often each table compares its partitions with their other replicas.
const ANTI_ENTROPY_PERIOD: Duration = Duration::from_secs(60);
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
    let clock = Clock::system();
    let cluster = System::start(
        &ClusterConfig {
            metadata_dir: config.metadata_dir.clone(),
            rpc_secret: config.rpc_secret.clone(),
            rpc_bind_addr: config.rpc_bind_addr,
            rpc_public_addr: config.rpc_public_addr,
            congestion: config.rpc_congestion,
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
    let db = Db::open(
        &config.metadata_dir.join("meta.redb"),
        &DbConfig {
            durability: if config.metadata_fsync {
                Durability::Fsync
            } else {
                Durability::NoFsync
            },
            cache_size_bytes: config.metadata_cache_size_bytes,
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
            body_idle_timeout: Duration::from_secs(config.body_idle_timeout_secs),
        },
        db,
        blocks,
        &replicator,
        clock,
    );
    model.start_anti_entropy(ANTI_ENTROPY_PERIOD);
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
    let service = hangar_api_s3::build_service(
        model.clone(),
        hangar_api_s3::S3Settings {
            region: config.region.clone(),
            pinned_region: config.pin_region.then(|| config.region.clone()),
            root_domain: config.root_domain.clone(),
        },
    )
    .map_err(|e| anyhow::anyhow!("s3_api.root_domain: {e:?}"))?;

    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(hangar_api_s3::serve(s3_listener, service, shutdown.clone()));
    let token = config.admin_token.clone();
    let (m, c, s) = (model.clone(), cluster.clone(), shutdown.clone());
    tasks.spawn(async move {
        if let Err(e) = hangar_api_admin::serve(admin_listener, m, c, token, s).await {
            warn!(error = %e, "admin endpoint stopped");
        }
    });
    tasks.spawn(sweeps(model.clone(), shutdown.clone()));
    tasks.spawn(maintenance(model, shutdown.clone()));
    tasks.spawn(async move {
        shutdown.cancelled().await;
        cluster.shutdown();
    });
    info!(node = %node, rpc = %running.rpc_addr, s3 = %running.s3_addr, admin = %running.admin_addr, "hangar is serving");
    Ok((running, tasks))
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

/// Releases unreferenced data and deletes blocks past their grace delay,
/// working continuously while there is work and waking once a second otherwise.
async fn maintenance(model: ObjectService, shutdown: CancellationToken) {
    loop {
        if let Err(e) = model.release_ended_uploads().await {
            warn!(error = %e, "releasing the parts of ended uploads failed");
        }
        let released = model
            .release_some(RELEASE_ROWS_PER_STEP)
            .await
            .unwrap_or_else(|e| {
                warn!(error = %e, "releasing data failed");
                0
            });
        let deleted = model
            .blocks()
            .collect_garbage(GC_BLOCKS_PER_STEP)
            .await
            .unwrap_or_else(|e| {
                warn!(error = %e, "block garbage collection failed");
                0
            });
        if released == 0 && deleted == 0 {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(MAINTENANCE_IDLE_PERIOD) => {}
            }
        } else if shutdown.is_cancelled() {
            return;
        }
    }
}

/// Sweeps the data directories for what a crash left behind: once right after
/// start (everything written before the start is fair game), then once a day.
async fn sweeps(model: ObjectService, shutdown: CancellationToken) {
    let mut cutoff = SystemTime::now();
    loop {
        // Stopping mid-sweep is safe: each step is a transaction of its own.
        tokio::select! {
            () = shutdown.cancelled() => return,
            r = model.blocks().sweep(cutoff) => {
                if let Err(e) = r {
                    warn!(error = %e, "data directory sweep failed");
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(SWEEP_PERIOD) => {}
        }
        cutoff = SystemTime::now() - SWEEP_MIN_AGE;
    }
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
