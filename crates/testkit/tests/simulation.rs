//! A seeded simulation: 4 nodes on the in-memory network (one zone each,
//! replication factor 3, links of 0 to 0.5 ms, clocks skewed by up to 300 ms
//! either way) take writes and deletes through random nodes while nodes go
//! silent, go down or crash and restart, and the layout changes; after
//! healing, every acknowledged write must read back intact through every
//! node, every acknowledged delete must hold, every node must list the same
//! keys, and the replicas of every table partition must have equal Merkle
//! roots.
//!
//! The nodes' wall clocks (timestamps, delays) are the simulation's: each
//! starts skewed by the seed and moves only when the simulation moves it, 5
//! to 50 ms per operation. Timers (RPC timeouts, the client's patience) run
//! on real time: the metadata engine's writer runs on its own thread, which
//! tokio's paused clock would not wait for.
//!
//! `SIM_SEEDS` (default 32) seeds run, from `SIM_FIRST_SEED` (default 1),
//! `SIM_PARALLEL` (default 8) at a time; a failure names its seed, which
//! replays it (the random choices depend only on it; thread timing can still
//! differ between runs). `SIM_TRACE=1` prints
//! every operation with its outcome and the timestamp a read then finds, every
//! fault, the phases of the run and, every 5 s while the cluster settles, the
//! layout trackers and each node's layout sync worker; `RUST_LOG` (e.g.
//! `RUST_LOG=hangar_table=debug`) the nodes' logs.
//!
//! Each node runs the server's background workers
//! ([`ObjectService::spawn_workers`]: anti-entropy, layout sync, resync,
//! release, scrub, sweep) with shorter periods, through the faults too; after
//! healing, the simulation only waits for them to finish the layout transition.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use hangar_cluster::history::{NodeRole, Tracker};
use hangar_model::workers::WorkerSettings;
use hangar_model::{BodyStream, ListParams, ModelConfig, ObjectService, PutParams};
use hangar_net::memory::{Link, LinkState};
use hangar_testkit::TestCluster;
use hangar_util::clock::{Clock, ManualWallClock, SystemWallClock, WallClock};
use hangar_util::Uuid;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const NODES: usize = 4;
const OPS: usize = 60;
/// Most a node's clock is ahead of or behind the others.
const MAX_SKEW: Duration = Duration::from_millis(300);
/// Slack on top of the clocks' readings (hybrid clocks count up by one per
/// event within a millisecond).
const MARGIN: Duration = Duration::from_millis(20);
/// How long a client waits for an answer during the faults.
const WAIT: Duration = Duration::from_secs(2);
/// Longest a write may take once the cluster has healed (well below the
/// 30 s after which a call to a node that does not answer gives up).
const HEALED_WAIT: Duration = Duration::from_secs(10);

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

/// Runs one seed; returns how many reads were checked on the way and how
/// many keys had a known value at the end.
async fn run_seed(seed: u64) -> Result<String, String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let begun_at = tokio::time::Instant::now();
    let phase = |what: &str| {
        if std::env::var_os("SIM_TRACE").is_some() {
            eprintln!(
                "seed {seed}: {what} at {:.1} s",
                begun_at.elapsed().as_secs_f64()
            );
        }
    };
    // The nodes' wall clocks are the simulation's: skewed by up to 300 ms
    // either way, and moved forward by the simulation only. Links of 0 to
    // 0.5 ms.
    let start = SystemWallClock.now_msec();
    let skew = MAX_SKEW.as_millis() as i64;
    let offsets: Vec<i64> = (0..NODES).map(|_| rng.gen_range(-skew..=skew)).collect();
    let fastest = *offsets.iter().max().expect("nodes");
    let walls: Vec<Arc<ManualWallClock>> = offsets
        .iter()
        .map(|o| Arc::new(ManualWallClock::new(start.saturating_add_signed(*o))))
        .collect();
    let clocks = walls
        .iter()
        .map(|w| Clock::new(w.clone() as Arc<dyn WallClock>))
        .collect();
    // Simulated milliseconds since the start.
    let mut now = 0u64;
    let tick = |msec: u64, now: &mut u64| {
        *now += msec;
        for w in &walls {
            w.advance(msec);
        }
    };
    let mut c = TestCluster::start_with_clocks(3, config(), clocks)
        .await
        .map_err(|e| e.to_string())?;
    // The background workers run as on a server, faster.
    c.run_workers(WorkerSettings {
        layout_sync_period: Duration::from_millis(500),
        idle_period: Duration::from_millis(1000),
        // A pass compares every partition with its replicas: the
        // heaviest worker, and 8 seeds of 4 nodes run side by side.
        anti_entropy_period: Duration::from_secs(10),
        ..WorkerSettings::default()
    });
    let latency = Duration::from_micros(rng.gen_range(0..=500));
    c.cluster.latency = latency;
    c.cluster.net.set_default_link(Link::with_latency(latency));
    let bucket = c.services[0]
        .create_bucket("sim", None)
        .await
        .map_err(|e| e.to_string())?;
    let mut expected = Expected::new();
    // Per key, the highest clock reading (simulated time plus the clock's
    // offset) a failed write of it may carry: a later write whose own clock
    // reading is not above it may lose to it.
    let mut uncertain_until: BTreeMap<String, i64> = BTreeMap::new();
    let mut reads_checked = 0;
    let mut faulty: Option<usize> = None;
    let mut crashed = false;
    let mut layout_changed = false;
    for op in 0..OPS {
        let trace = std::env::var_os("SIM_TRACE").is_some();
        // A fault: at most one node at a time, so a quorum stays reachable.
        if rng.gen_bool(0.15) {
            if let Some(n) = faulty.take() {
                if std::mem::take(&mut crashed) {
                    c.restart(n).await.map_err(|e| format!("restart: {e}"))?;
                } else {
                    c.cluster.set_state(n, LinkState::Up);
                }
                if trace {
                    eprintln!("op {op}: node {n} back");
                }
            } else {
                // Silent (packets dropped), down (connections refused), or
                // crashed (the process gone; it restarts over what it had
                // committed).
                let n = rng.gen_range(0..NODES);
                let fault = match rng.gen_range(0..3) {
                    0 => {
                        c.cluster.set_state(n, LinkState::Silent);
                        "silent"
                    }
                    1 => {
                        c.cluster.set_state(n, LinkState::Down);
                        "down"
                    }
                    _ => {
                        c.crash(n);
                        crashed = true;
                        "crashed"
                    }
                };
                if trace {
                    eprintln!("op {op}: node {n} {fault}");
                }
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
            if trace {
                eprintln!("op {op}: layout version {version} changes the capacity of node {node}");
            }
        }
        let through = loop {
            let n = rng.gen_range(0..NODES);
            if Some(n) != faulty {
                break n;
            }
        };
        let key = format!("k{}", rng.gen_range(0..12));
        // Each operation starts 5 to 50 simulated milliseconds after the last.
        tick(rng.gen_range(5..=50), &mut now);
        let started = now;
        // What an acknowledged request leaves under the key; `Err` if it
        // failed or was abandoned (no answer in time), as a client would:
        // either outcome is then right.
        let outcome: Result<Option<Vec<u8>>, ()> = if rng.gen_bool(0.75) {
            let len = [10, 3000, 9000][rng.gen_range(0..3)];
            let data: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            let put =
                c.services[through].put_object(bucket, &key, PutParams::default(), body(&data));
            match tokio::time::timeout(WAIT, put).await {
                Ok(Ok(_)) => Ok(Some(data)),
                Ok(Err(_)) | Err(_) => Err(()),
            }
        } else {
            let delete = c.services[through].delete_object(bucket, &key);
            match tokio::time::timeout(WAIT, delete).await {
                Ok(Ok(())) => Ok(None),
                Ok(Err(_)) | Err(_) => Err(()),
            }
        };
        if trace {
            let seen = c.services[through].get_object(&bucket, &key).await;
            eprintln!(
                "op {op} at {} ms: {key} through {through}: {:?}; now {:?}",
                started,
                outcome.as_ref().map(|v| v.as_ref().map(Vec::len)),
                seen.map(|(v, _)| v.timestamp)
            );
        }
        match outcome {
            // A failed write may still have reached a replica, and spread
            // from there later, timestamped by a clock as far ahead as the
            // fastest node's (a hybrid clock follows the versions it saw):
            // until the writer's clock has passed that, a write of the key
            // acknowledged meanwhile may lose to it.
            Err(()) => {
                expected.remove(&key);
                let reading = now as i64 + fastest;
                let until = uncertain_until.entry(key).or_insert(reading);
                *until = (*until).max(reading);
            }
            Ok(_)
                if uncertain_until.get(&key).is_some_and(|until| {
                    started as i64 + offsets[through] <= until + MARGIN.as_millis() as i64
                }) =>
            {
                // Either this request or the failed one wins.
                expected.remove(&key);
            }
            Ok(value) => {
                expected.insert(key, value);
            }
        }
        // Read-after-write through another live node.
        let reader = (through + 1 + rng.gen_range(0..NODES - 1)) % NODES;
        if Some(reader) != faulty {
            let key = format!("k{}", rng.gen_range(0..12));
            if let Some(want) = expected.get(&key) {
                reads_checked += 1;
                // An error (or no answer in time) is a quorum this node
                // cannot reach yet (a node just back redials its peers, a
                // silent one is waited for); an answer must be right.
                let got = tokio::time::timeout(WAIT, read(&c.services[reader], &bucket, &key))
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
    phase("faults done");
    // Heal, then converge: the workers (anti-entropy, layout sync, resync,
    // release) finish the layout transition.
    if let (Some(n), true) = (faulty, crashed) {
        c.restart(n).await.map_err(|e| format!("restart: {e}"))?;
    }
    for n in 0..NODES {
        c.cluster.set_state(n, LinkState::Up);
    }
    let healed_at = tokio::time::Instant::now();
    let mut settled = false;
    // A write sent to a node while it was silent holds its layout version's
    // acknowledgement until the call times out (at most a minute).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while tokio::time::Instant::now() < deadline {
        tick(200, &mut now);
        let h = c.cluster.systems[0].layout().snapshot();
        if h.live_versions().len() == 1 && h.tracker_min(Tracker::Sync) == h.current().version {
            settled = true;
            break;
        }
        if std::env::var_os("SIM_TRACE").is_some() && healed_at.elapsed().as_millis() % 5000 < 250 {
            eprintln!(
                "seed {seed}: {:?} live {:?} trackers {:?} workers {:?}",
                healed_at.elapsed(),
                h.live_versions()
                    .iter()
                    .map(|v| v.version)
                    .collect::<Vec<_>>(),
                h.trackers(),
                layout_sync_states(&c.services)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if !settled {
        let h = c.cluster.systems[0].layout().snapshot();
        return Err(format!(
            "the layout transition did not finish after healing: live versions {:?}, trackers {:?}, layout sync workers: {:?}",
            h.live_versions().iter().map(|v| v.version).collect::<Vec<_>>(),
            h.trackers(),
            layout_sync_states(&c.services)
        ));
    }
    phase("settled");
    // One more write of every key through a random node, once every clock
    // has passed whatever a failed write may carry: every key then has a
    // known value for the checks below.
    tick((2 * MAX_SKEW + MARGIN).as_millis() as u64, &mut now);
    for k in 0..12 {
        let key = format!("k{k}");
        let through = rng.gen_range(0..NODES);
        let data: Vec<u8> = (0..3000).map(|_| rng.gen()).collect();
        let begun = tokio::time::Instant::now();
        let put = c.services[through].put_object(bucket, &key, PutParams::default(), body(&data));
        let result = tokio::time::timeout(Duration::from_secs(60), put).await;
        let took = begun.elapsed();
        match result {
            Ok(Ok(_)) if took <= HEALED_WAIT => {
                expected.insert(key, Some(data));
            }
            Ok(Ok(_)) => {
                return Err(format!(
                    "a write of {key} through node {through} after healing took {took:?}"
                ))
            }
            Ok(Err(e)) => {
                return Err(format!(
                "a write of {key} through node {through} after healing failed after {took:?}: {e}"
            ))
            }
            Err(_) => {
                return Err(format!(
                    "a write of {key} through node {through} after healing took over a minute"
                ))
            }
        }
    }
    phase("written");
    for (i, s) in c.services.iter().enumerate() {
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
    phase("read");
    let params = ListParams {
        max_keys: 1000,
        ..ListParams::default()
    };
    let mut listings = Vec::new();
    for s in &c.services {
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
    phase("listed");
    // Every table partition: equal Merkle roots on all its holders, once
    // anti-entropy has run. The check runs a pass itself on every node before
    // comparing: the workers go on meanwhile (the release worker changes
    // block rows), and their own passes come only every 10 s.
    let mut differing = Vec::new();
    for _ in 0..30 {
        for s in &c.services {
            s.sync_tables().await;
        }
        differing = differing_roots(&c.services)?;
        if differing.is_empty() {
            return Ok(format!(
                "{reads_checked} reads checked during the faults, {} keys known at the end",
                expected.len()
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(format!(
        "Merkle roots differ after healing: {:?}",
        &differing[..differing.len().min(5)]
    ))
}

/// What each node's layout sync worker last said.
fn layout_sync_states(services: &[ObjectService]) -> Vec<String> {
    services
        .iter()
        .map(|s| {
            s.workers()
                .list()
                .into_iter()
                .find(|w| w.name == hangar_model::workers::names::LAYOUT_SYNC)
                .map(|w| format!("{} (last error: {:?})", w.progress, w.last_error))
                .unwrap_or_default()
        })
        .collect()
}

/// The (table, partition) pairs whose holders report different roots.
fn differing_roots(services: &[ObjectService]) -> Result<Vec<(&'static str, u16)>, String> {
    let mut seen: BTreeMap<(&'static str, u16), Vec<[u8; 32]>> = BTreeMap::new();
    for s in services {
        for t in s.table_roots().map_err(|e| e.to_string())? {
            for (p, root) in t.roots {
                seen.entry((t.table, p.0)).or_default().push(root);
            }
        }
    }
    Ok(seen
        .into_iter()
        .filter(|(_, roots)| roots.iter().any(|r| *r != roots[0]))
        .map(|(k, _)| k)
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_faults_and_layout_changes_lose_nothing_acknowledged() {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let seeds = env("SIM_SEEDS", 32);
    let first = env("SIM_FIRST_SEED", 1);
    let parallel = env("SIM_PARALLEL", 8).max(1) as usize;
    // Seeds run side by side: each spends most of its time waiting (for
    // timeouts, for the layout transition after healing).
    let runs = futures::stream::iter(first..first + seeds)
        .map(|seed| async move {
            let t = tokio::time::Instant::now();
            let r = tokio::spawn(run_seed(seed))
                .await
                .unwrap_or_else(|e| Err(format!("panicked: {e}")));
            eprintln!(
                "seed {seed}: {:.1} s, {}",
                t.elapsed().as_secs_f64(),
                r.as_deref().unwrap_or("failed")
            );
            (seed, r)
        })
        .buffer_unordered(parallel)
        .collect::<Vec<_>>()
        .await;
    let failed: Vec<String> = runs
        .into_iter()
        .filter_map(|(seed, r)| {
            r.err().map(|e| {
                format!("seed {seed} (replay with SIM_FIRST_SEED={seed} SIM_SEEDS=1): {e}")
            })
        })
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
