//! A seeded simulation: 4 nodes on the in-memory network (one zone each,
//! replication factor 3) take writes and deletes through random nodes while
//! links go silent or down and the layout changes; after healing, every
//! acknowledged write must read back intact through every node, every
//! acknowledged delete must hold, and every node must list the same keys.
//!
//! The clock is the real one (the metadata engine's writer runs on its own
//! thread, which a paused clock would not wait for).
//!
//! `SIM_SEEDS` (default 6) seeds run, from `SIM_FIRST_SEED` (default 1); a
//! failure names its seed, which replays it (the random choices depend only
//! on it; thread timing can still differ between runs).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use hangar_cluster::history::{NodeRole, Tracker};
use hangar_model::{BodyStream, ListParams, ModelConfig, ObjectService, PutParams};
use hangar_net::memory::LinkState;
use hangar_testkit::TestCluster;
use hangar_util::Uuid;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const NODES: usize = 4;
const OPS: usize = 60;
/// How long a client waits for an answer during the faults.
const WAIT: Duration = Duration::from_secs(2);

fn config() -> ModelConfig {
    hangar_testkit::small_model_config()
}

fn body(data: &[u8]) -> BodyStream {
    let chunks: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(1500)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures::stream::iter(chunks))
}

/// The object's bytes; `Ok(None)` if there is no such key.
async fn read(svc: &ObjectService, bucket: &Uuid, key: &str) -> Result<Option<Vec<u8>>, String> {
    let data = match svc.get_object(bucket, key).await {
        Ok((_, data)) => data,
        Err(hangar_model::Error::NoSuchKey) => return Ok(None),
        Err(e) => return Err(format!("get: {e}")),
    };
    let size = data.meta().expect("meta").size;
    let mut s = svc.read_data(&data, 0..size);
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.map_err(|e| format!("read: {e}"))?);
    }
    Ok(Some(out))
}

fn describe(r: &Result<Option<Vec<u8>>, String>) -> String {
    match r {
        Ok(Some(b)) => format!("{} bytes", b.len()),
        Ok(None) => "no such key".into(),
        Err(e) => e.clone(),
    }
}

fn describe_want(w: &Option<Vec<u8>>) -> String {
    w.as_ref()
        .map_or("no such key".into(), |b| format!("{} bytes", b.len()))
}

/// What clients were told: the bytes of the last acknowledged write of each
/// key, or `None` after an acknowledged delete. Keys whose last request
/// failed are left out (either outcome is right).
type Expected = BTreeMap<String, Option<Vec<u8>>>;

async fn run_seed(seed: u64) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let c = TestCluster::start(NODES, 3, config())
        .await
        .map_err(|e| e.to_string())?;
    let svc = &c.services;
    let bucket = svc[0]
        .create_bucket("sim", None)
        .await
        .map_err(|e| e.to_string())?;
    let mut expected = Expected::new();
    let mut faulty: Option<usize> = None;
    let mut layout_changed = false;
    for op in 0..OPS {
        // A fault: at most one node at a time, so a quorum stays reachable.
        if rng.gen_bool(0.15) {
            if let Some(n) = faulty.take() {
                c.cluster.set_state(n, LinkState::Up);
            } else {
                let n = rng.gen_range(0..NODES);
                let state = if rng.gen_bool(0.5) {
                    LinkState::Silent
                } else {
                    LinkState::Down
                };
                c.cluster.set_state(n, state);
                faulty = Some(n);
            }
        }
        if !layout_changed && op == OPS / 2 && rng.gen_bool(0.7) {
            // A capacity change moves partitions while writes go on.
            let node = c.cluster.ids[rng.gen_range(0..NODES)];
            let zone = format!(
                "z{}",
                c.cluster.ids.iter().position(|i| *i == node).unwrap_or(0)
            );
            let through = (0..NODES).find(|i| Some(*i) != faulty).unwrap_or(0);
            let layout = c.cluster.systems[through].layout();
            let version = layout.snapshot().current().version + 1;
            layout
                .update(|h, ts| h.stage_role(node, NodeRole::storage(zone, 3 << 40), ts))
                .map_err(|e| format!("stage: {e}"))?;
            layout
                .update(|h, ts| h.apply(Some(version), ts))
                .map_err(|e| format!("apply: {e}"))?;
            layout_changed = true;
        }
        let through = loop {
            let n = rng.gen_range(0..NODES);
            if Some(n) != faulty {
                break n;
            }
        };
        let key = format!("k{}", rng.gen_range(0..12));
        if rng.gen_bool(0.75) {
            let len = [10, 3000, 9000][rng.gen_range(0..3)];
            let data: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            let put = svc[through].put_object(bucket, &key, PutParams::default(), body(&data));
            // A write that cannot finish soon is abandoned, as a client
            // would: either outcome is then right.
            match tokio::time::timeout(WAIT, put).await {
                Ok(Ok(_)) => {
                    expected.insert(key, Some(data));
                }
                Ok(Err(_)) | Err(_) => {
                    expected.remove(&key);
                }
            }
        } else {
            match tokio::time::timeout(WAIT, svc[through].delete_object(bucket, &key)).await {
                Ok(Ok(())) => {
                    expected.insert(key, None);
                }
                Ok(Err(_)) | Err(_) => {
                    expected.remove(&key);
                }
            }
        }
        // Read-after-write through another live node.
        let reader = (through + 1 + rng.gen_range(0..NODES - 1)) % NODES;
        if Some(reader) != faulty {
            let key = format!("k{}", rng.gen_range(0..12));
            if let Some(want) = expected.get(&key) {
                // An error (or no answer in time) is a quorum this node
                // cannot reach yet (a node just back redials its peers, a
                // silent one is waited for); an answer must be right.
                let got = tokio::time::timeout(WAIT, read(&svc[reader], &bucket, &key))
                    .await
                    .unwrap_or_else(|_| Err("no answer in time".into()));
                if got.as_ref().is_ok_and(|g| g != want) {
                    return Err(format!(
                        "op {op}: read-after-write of {key} through node {reader} (faulty: {faulty:?}): got {}, expected {}",
                        describe(&got),
                        describe_want(want)
                    ));
                }
            }
        }
    }
    // Heal, then converge: anti-entropy everywhere, layout transitions done.
    for n in 0..NODES {
        c.cluster.set_state(n, LinkState::Up);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut settled = false;
    let mut steps = Vec::new();
    // A write sent to a node while it was silent holds its layout version's
    // acknowledgement until the call times out (at most a minute).
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while std::time::Instant::now() < deadline {
        steps.clear();
        for s in svc {
            // What the server's maintenance does: the data of failed writes goes.
            let _ = s.release_some(10_000).await;
            s.sync_tables().await;
            steps.push(format!("{:?}", s.layout_sync_step().await));
            let _ = s.data().resync_some(1000, true).await;
        }
        let h = c.cluster.systems[0].layout().snapshot();
        if h.live_versions().len() == 1 && h.tracker_min(Tracker::Sync) == h.current().version {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if !settled {
        let h = c.cluster.systems[0].layout().snapshot();
        return Err(format!(
            "the layout transition did not finish after healing: live versions {:?}, trackers {:?}, steps {steps:?}",
            h.live_versions().iter().map(|v| v.version).collect::<Vec<_>>(),
            h.trackers()
        ));
    }
    for (i, s) in svc.iter().enumerate() {
        for (key, want) in &expected {
            let mut got = read(s, &bucket, key).await;
            for _ in 0..30 {
                if got.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                got = read(s, &bucket, key).await;
            }
            if got.as_ref().ok() != Some(want) {
                return Err(format!(
                    "after healing, {key} through node {i}: got {}, expected {}",
                    describe(&got),
                    describe_want(want)
                ));
            }
        }
    }
    let params = ListParams {
        max_keys: 1000,
        ..ListParams::default()
    };
    let mut listings = Vec::new();
    for s in svc {
        let l = s
            .list_objects(&bucket, &params)
            .await
            .map_err(|e| e.to_string())?;
        listings.push(l.objects.into_iter().map(|o| o.key).collect::<Vec<_>>());
    }
    if listings.iter().any(|l| l != &listings[0]) {
        return Err(format!("listings differ after healing: {listings:?}"));
    }
    for (key, want) in &expected {
        if want.is_some() != listings[0].contains(key) {
            return Err(format!("listing and reads disagree on {key}"));
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_faults_and_layout_changes_lose_nothing_acknowledged() {
    let seeds: u64 = std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    let first: u64 = std::env::var("SIM_FIRST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    for seed in first..first + seeds {
        if let Err(e) = run_seed(seed).await {
            panic!("seed {seed} failed (replay with SIM_FIRST_SEED={seed} SIM_SEEDS=1): {e}");
        }
    }
}
