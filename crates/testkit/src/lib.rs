//! Test harness: a complete in-process node (metadata in memory, blocks in a
//! temporary directory) with a real AWS SDK client wired straight to its S3
//! service, without sockets. Used as a dev-dependency only.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let node = hangar_testkit::TestNode::start().await?;
//! node.s3.create_bucket().bucket("demo").send().await?;
//! # Ok(()) }
//! ```

pub mod fuzzing;

use anyhow::Context;
use hangar_block::disk::FaultyDisk;
use hangar_block::{BlockStore, BlockStoreConfig, DataDir};
use hangar_cluster::testing::MemoryCluster;
use hangar_db::{Crash, Db, DbConfig, Durability, MemoryDisk};
use hangar_model::schema::access_key::AccessKey;
use hangar_model::workers::WorkerSettings;
use hangar_model::{ModelConfig, ObjectService};
use hangar_table::Replicator;
use hangar_util::clock::Clock;
use tokio_util::sync::CancellationToken;

/// An in-process node and a client for it.
pub struct TestNode {
    /// The object service behind the S3 API.
    pub model: ObjectService,
    /// A key allowed to create buckets.
    pub key: AccessKey,
    /// An AWS SDK client signing with [`TestNode::key`].
    pub s3: aws_sdk_s3::Client,
    settings: hangar_api_s3::S3Settings,
    _cluster: MemoryCluster,
    _dir: tempfile::TempDir,
}

/// Settings for tests: 4 KiB blocks (objects cross block boundaries
/// cheaply), a 100-byte inline threshold, and no delays before data and
/// tombstones are released or unused data is found by `repair versions`.
pub fn small_model_config() -> ModelConfig {
    ModelConfig {
        block_size: 4096,
        inline_threshold: 100,
        upload_buffer_bytes: 1 << 20,
        release_delay_msec: 0,
        release_retry_msec: 0,
        body_idle_timeout: std::time::Duration::from_secs(30),
        tombstone_delay_msec: 0,
        orphan_grace_msec: 0,
    }
}

/// The object service of the node of `replicator`, with its metadata in
/// memory and its blocks under `dir`.
pub fn service_on(
    replicator: &Replicator,
    dir: &std::path::Path,
    config: ModelConfig,
    clock: Clock,
) -> anyhow::Result<ObjectService> {
    service_with_db(replicator, dir, config, clock, Db::open_in_memory()?)
}

/// Like [`service_on`], with its metadata in `db`.
pub fn service_with_db(
    replicator: &Replicator,
    dir: &std::path::Path,
    config: ModelConfig,
    clock: Clock,
    db: Db,
) -> anyhow::Result<ObjectService> {
    service_with_disk(
        replicator,
        dir,
        config,
        clock,
        db,
        std::sync::Arc::new(hangar_block::disk::OsDisk),
    )
}

/// Like [`service_with_db`], the block files read and written through `disk`.
pub fn service_with_disk(
    replicator: &Replicator,
    dir: &std::path::Path,
    config: ModelConfig,
    clock: Clock,
    db: Db,
    disk: std::sync::Arc<dyn hangar_block::disk::BlockDisk>,
) -> anyhow::Result<ObjectService> {
    let blocks = BlockStore::with_disk(
        BlockStoreConfig {
            data_dirs: vec![DataDir {
                path: dir.join("blocks"),
                capacity: 1,
            }],
            compression_level: Some(1),
            fsync: false,
            gc_delay_msec: 0,
        },
        db.clone(),
        clock.clone(),
        disk,
    )?;
    Ok(ObjectService::new(config, db, blocks, replicator, clock))
}

/// Nodes on the in-memory network (see [`MemoryCluster::start`]), each with
/// an object service.
pub struct TestCluster {
    /// The network and the nodes' clusters.
    pub cluster: MemoryCluster,
    /// Each node's object service, in node order.
    pub services: Vec<ObjectService>,
    nodes: Vec<NodeStore>,
    config: ModelConfig,
    /// The background workers' settings, once [`TestCluster::run_workers`]
    /// started them.
    workers: Option<WorkerSettings>,
}

/// What a node keeps across a crash: its metadata disk, blocks and clock.
struct NodeStore {
    disk: MemoryDisk,
    dir: tempfile::TempDir,
    clock: Clock,
    durability: Durability,
    /// Stops the background workers of the node's current incarnation.
    stop: CancellationToken,
    /// The disk under its block files, which tests make fail.
    block_disk: FaultyDisk,
}

impl TestCluster {
    /// Starts `nodes` nodes with `replication_factor`, each serving objects
    /// with `config`.
    pub async fn start(
        nodes: usize,
        replication_factor: usize,
        config: ModelConfig,
    ) -> anyhow::Result<Self> {
        let clocks = (0..nodes).map(|_| Clock::system()).collect();
        Self::start_with_clocks(replication_factor, config, clocks).await
    }

    /// Like [`TestCluster::start`], one node per clock, each node's object
    /// service on its clock (to skew them).
    pub async fn start_with_clocks(
        replication_factor: usize,
        config: ModelConfig,
        clocks: Vec<Clock>,
    ) -> anyhow::Result<Self> {
        Self::start_with_durability(replication_factor, config, clocks, Durability::NoFsync).await
    }

    /// Like [`TestCluster::start_with_clocks`], the nodes' metadata committed
    /// with `durability` (the default: no fsync).
    pub async fn start_with_durability(
        replication_factor: usize,
        config: ModelConfig,
        clocks: Vec<Clock>,
        durability: Durability,
    ) -> anyhow::Result<Self> {
        let cluster =
            MemoryCluster::start(clocks.len(), replication_factor, std::time::Duration::ZERO).await;
        let mut services = Vec::new();
        let mut nodes = Vec::new();
        for (system, clock) in cluster.systems.iter().zip(clocks) {
            let node = NodeStore {
                disk: MemoryDisk::default(),
                dir: tempfile::tempdir()?,
                clock,
                durability,
                stop: CancellationToken::new(),
                block_disk: FaultyDisk::new(),
            };
            services.push(node.service(&Replicator::new(system.clone()), config.clone())?);
            nodes.push(node);
        }
        Ok(TestCluster {
            cluster,
            services,
            nodes,
            config,
            workers: None,
        })
    }

    /// Runs every node's background workers with `settings`, as the server
    /// does ([`ObjectService::spawn_workers`]): now, and on each restart. A
    /// crash stops them.
    pub fn run_workers(&mut self, settings: WorkerSettings) {
        self.workers = Some(settings);
        for (service, node) in self.services.iter().zip(&self.nodes) {
            service.spawn_workers(settings, false, &node.stop);
        }
    }

    /// An S3 client (aws-sdk-s3, through the s3s front end in process) of
    /// node `node`, signing with `access_key` and `secret`.
    pub fn s3_client(
        &self,
        node: usize,
        access_key: &str,
        secret: &str,
    ) -> anyhow::Result<aws_sdk_s3::Client> {
        TestNode::client_for(
            &self.services[node],
            &hangar_api_s3::S3Settings::default(),
            access_key,
            secret,
        )
    }

    /// The disk under node `node`'s block files: set faults on it to make
    /// it fail (it works until told otherwise, across restarts too).
    pub fn block_disk(&self, node: usize) -> &FaultyDisk {
        &self.nodes[node].block_disk
    }

    /// Deletes the file of block `hash` from every node's disk, as a loss
    /// would. Returns how many nodes had it.
    pub fn lose_block_everywhere(&self, hash: &hangar_util::Hash) -> usize {
        self.services
            .iter()
            .filter(|s| {
                let removed = s
                    .blocks()
                    .file_paths(hash)
                    .into_iter()
                    .map(std::fs::remove_file);
                removed.filter(Result::is_ok).count() > 0
            })
            .count()
    }

    /// Crashes node `node` as a killed process (see [`MemoryCluster::crash`]):
    /// it answers nothing until [`TestCluster::restart`], and its metadata
    /// keeps what the process had written, its blocks what they hold.
    pub fn crash(&mut self, node: usize) {
        self.crash_with(node, Crash::Process);
    }

    /// Like [`TestCluster::crash`], for a crash of kind `crash`: a machine
    /// crash keeps only the metadata that was synced.
    pub fn crash_with(&mut self, node: usize, crash: Crash) {
        (self.crasher(node, crash))();
    }

    /// What [`TestCluster::crash_with`] does, as a function that can be
    /// called from anywhere: from a crash hook of the node itself
    /// ([`ObjectService::set_crash_hook`]), to stop it at a precise step.
    /// Restart the node with [`TestCluster::restart`] afterwards.
    pub fn crasher(&self, node: usize, crash: Crash) -> impl Fn() + Send + Sync + 'static {
        let disk = self.nodes[node].disk.clone();
        let network = self.cluster.crasher(node);
        let workers = self.nodes[node].stop.clone();
        move || {
            workers.cancel();
            disk.crash(crash);
            network();
        }
    }

    /// Starts a crashed node again over what it had stored, as the server
    /// does at start: a new endpoint and object service, then the release of
    /// uploads the crash cut short.
    pub async fn restart(&mut self, node: usize) -> anyhow::Result<()> {
        let clock = self.nodes[node].clock.clone();
        self.restart_with_clock(node, clock).await
    }

    /// Like [`TestCluster::restart`], the node's object service on `clock`
    /// from now on (a process restarted on a machine whose clock was set).
    pub async fn restart_with_clock(&mut self, node: usize, clock: Clock) -> anyhow::Result<()> {
        self.nodes[node].clock = clock;
        let system = self.cluster.restart(node).await;
        let service = self.nodes[node].service(&Replicator::new(system), self.config.clone())?;
        service.recover_interrupted_uploads().await?;
        self.nodes[node].stop = CancellationToken::new();
        if let Some(settings) = self.workers {
            service.spawn_workers(settings, false, &self.nodes[node].stop);
        }
        self.services[node] = service;
        Ok(())
    }
}

impl NodeStore {
    fn service(
        &self,
        replicator: &Replicator,
        config: ModelConfig,
    ) -> anyhow::Result<ObjectService> {
        service_with_disk(
            replicator,
            self.dir.path(),
            config,
            self.clock.clone(),
            Db::open_on(
                &self.disk,
                &DbConfig {
                    durability: self.durability,
                    ..DbConfig::default()
                },
            )?,
            std::sync::Arc::new(self.block_disk.clone()),
        )
    }
}

impl TestNode {
    /// Starts a node with small blocks (so tests cross block boundaries cheaply).
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(hangar_api_s3::S3Settings::default()).await
    }

    /// Like [`TestNode::start`], with the given S3 settings. With a root domain,
    /// the client uses virtual-host-style addressing under it.
    pub async fn start_with(settings: hangar_api_s3::S3Settings) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let cluster = MemoryCluster::start(1, 1, std::time::Duration::ZERO).await;
        let replicator = Replicator::new(cluster.systems[0].clone());
        let model = service_on(
            &replicator,
            dir.path(),
            ModelConfig {
                block_size: 64 << 10,
                inline_threshold: 4096,
                upload_buffer_bytes: 8 << 20,
                release_delay_msec: 0,
                body_idle_timeout: std::time::Duration::from_secs(60),
                tombstone_delay_msec: 0,
                ..ModelConfig::default()
            },
            Clock::system(),
        )?;
        let key = model.create_key("test").await?;
        let key = model.update_key(&key.id, None, Some(true)).await?;
        let s3 = Self::client_for(&model, &settings, &key.id, &key.secret)?;
        Ok(TestNode {
            model,
            key,
            s3,
            settings,
            _cluster: cluster,
            _dir: dir,
        })
    }

    /// The directory holding this node's block files (tests damage them).
    pub fn blocks_dir(&self) -> std::path::PathBuf {
        self._dir.path().join("blocks")
    }

    /// A client for this node signing with the given credentials.
    pub fn client(&self, access_key: &str, secret: &str) -> anyhow::Result<aws_sdk_s3::Client> {
        Self::client_for(&self.model, &self.settings, access_key, secret)
    }

    fn client_for(
        model: &ObjectService,
        settings: &hangar_api_s3::S3Settings,
        access_key: &str,
        secret: &str,
    ) -> anyhow::Result<aws_sdk_s3::Client> {
        let service = hangar_api_s3::build_service(model.clone(), settings.clone())
            .map_err(|e| anyhow::anyhow!("{e:?}"))
            .context("building the S3 service")?;
        let creds = aws_credential_types::Credentials::from_keys(access_key, secret, None);
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .credentials_provider(creds)
            .region(aws_sdk_s3::config::Region::new("hangar"))
            .endpoint_url(match &settings.root_domain {
                Some(d) => format!("http://{d}"),
                None => "http://localhost:3900".to_string(),
            })
            .force_path_style(settings.root_domain.is_none())
            .http_client(s3s_aws::Client::from(service))
            .build();
        Ok(aws_sdk_s3::Client::from_conf(config))
    }
}

/// A request body that sends `data` in chunks of 1,500 bytes.
pub fn body(data: &[u8]) -> hangar_model::BodyStream {
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = data
        .chunks(1500)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures::stream::iter(chunks))
}

/// The bytes of `key` read through `svc` (`Ok(None)`: no such key), or what
/// failed, in words.
pub async fn read_object(
    svc: &ObjectService,
    bucket: &hangar_util::Uuid,
    key: &str,
) -> Result<Option<Vec<u8>>, String> {
    use futures::StreamExt as _;
    let data = match svc.get_object(bucket, key).await {
        Ok((_, data)) => data,
        Err(hangar_model::Error::NoSuchKey) => return Ok(None),
        Err(e) => return Err(format!("get: {e}")),
    };
    let size = data.meta().map_or(0, |m| m.size);
    let mut s = svc.read_data(&data, 0..size);
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.map_err(|e| format!("read: {e}"))?);
    }
    Ok(Some(out))
}
