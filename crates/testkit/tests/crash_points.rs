//! A node killed at each step of the write and release paths, seeded: no
//! acknowledged write is lost, and every object a listing shows can be read.
//!
//! Four nodes (one zone each, replication factor 3, so the writing node may
//! or may not hold the bucket's objects) take a few acknowledged writes.
//! Then one node is crashed from its own crash hook the moment it reaches a
//! step ([`CrashPoint`]): during a PUT of a new key or of an existing one,
//! or while it releases the data of a version it saw overwritten. It
//! restarts over what its disk kept, and every node runs its release worker,
//! garbage collection, anti-entropy and block resync until they settle.
//!
//! Each step runs in three durability settings: metadata without fsync and
//! a killed process; with fsync and a killed process; with fsync and a
//! machine crash (only what was synced is left). Without fsync a machine
//! crash may lose the last second of a node's commits by design, so that
//! case is not run.
//!
//! `CRASH_SEEDS` (default 2) seeds per case run from `CRASH_FIRST_SEED`
//! (default 1), `CRASH_PARALLEL` (default 8) cases at a time.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use hangar_db::{Crash, Durability};
use hangar_model::{CrashPoint, ListParams, ObjectService, PutParams};
use hangar_testkit::{body, read_object, small_model_config, TestCluster};
use hangar_util::clock::Clock;
use hangar_util::Uuid;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const NODES: usize = 4;
const WAIT: Duration = Duration::from_secs(3);

#[derive(Clone, Copy, Debug)]
struct Case {
    point: CrashPoint,
    durability: Durability,
    crash: Crash,
    seed: u64,
}

fn data(rng: &mut StdRng) -> Vec<u8> {
    let len = [50, 9000, 13_000][rng.gen_range(0..3)];
    (0..len).map(|_| rng.gen()).collect()
}

async fn put(svc: &ObjectService, bucket: Uuid, key: &str, data: &[u8]) -> bool {
    let put = svc.put_object(bucket, key, PutParams::default(), body(data));
    matches!(tokio::time::timeout(WAIT, put).await, Ok(Ok(_)))
}

/// Every node's maintenance, as the server runs it, a few rounds.
async fn settle(c: &TestCluster) {
    for _ in 0..4 {
        for s in &c.services {
            let _ = s.release_some(10_000).await;
            let _ = s.blocks().collect_garbage(10_000).await;
            s.sync_tables().await;
            let _ = s.resync_some(1000, true).await;
        }
    }
}

/// Every key a node lists, with the node.
async fn listed(c: &TestCluster, bucket: &Uuid) -> Result<Vec<(usize, String)>, String> {
    let params = ListParams {
        max_keys: 1000,
        ..ListParams::default()
    };
    let mut out = Vec::new();
    for (i, s) in c.services.iter().enumerate() {
        let l = s
            .list_objects(bucket, &params)
            .await
            .map_err(|e| format!("listing through node {i}: {e}"))?;
        out.extend(l.objects.into_iter().map(|o| (i, o.key)));
    }
    Ok(out)
}

async fn run(case: Case) -> Result<String, String> {
    let mut rng = StdRng::seed_from_u64(case.seed);
    let clocks = (0..NODES).map(|_| Clock::system()).collect();
    let mut c =
        TestCluster::start_with_durability(3, small_model_config(), clocks, case.durability)
            .await
            .map_err(|e| e.to_string())?;
    let bucket = c.services[0]
        .create_bucket("crash", None)
        .await
        .map_err(|e| e.to_string())?;
    // Acknowledged writes, through every node.
    let mut acked: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for i in 0..6 {
        let key = format!("k{i}");
        // k0, overwritten below, has blocks to release.
        let bytes = match i {
            0 => (0..9000).map(|_| rng.gen()).collect(),
            _ => data(&mut rng),
        };
        if put(&c.services[i % NODES], bucket, &key, &bytes).await {
            acked.insert(key, bytes);
        }
    }
    let release = matches!(
        case.point,
        CrashPoint::ReleaseCheck | CrashPoint::ReleaseRows
    );
    // A release runs on the nodes holding the object (their hook queues
    // what an overwrite drops); a write through any node.
    let holders: Vec<usize> = {
        let layout = c.cluster.systems[0].layout().snapshot().read_layout();
        let nodes = layout.nodes_of(&hangar_model::schema::object::bucket_partition(&bucket));
        (0..NODES)
            .filter(|i| !release || nodes.contains(&c.cluster.ids[*i]))
            .collect()
    };
    let victim = holders[rng.gen_range(0..holders.len())];
    let crashed = Arc::new(AtomicBool::new(false));
    {
        let (crash, crashed, point) = (c.crasher(victim, case.crash), crashed.clone(), case.point);
        c.services[victim].set_crash_hook(Arc::new(move |p| {
            if p == point && !crashed.swap(true, Ordering::SeqCst) {
                crash();
            }
        }));
    }
    // What the victim was doing, and what either outcome leaves.
    let key = if release || rng.gen_bool(0.5) {
        "k0".to_string() // an overwrite
    } else {
        "new".to_string()
    };
    let bytes = data(&mut rng);
    let before = acked.get(&key).cloned();
    let answered = match release {
        true => {
            // An overwrite through the victim leaves data to release; the
            // victim's release worker then runs into the crash.
            let answered = put(&c.services[victim], bucket, &key, &bytes).await;
            if answered {
                acked.insert(key.clone(), bytes.clone());
            }
            if !answered {
                return Err("the overwrite before the release failed".into());
            }
            for _ in 0..3 {
                let _ = c.services[victim].release_some(10_000).await;
            }
            answered
        }
        false => put(&c.services[victim], bucket, &key, &bytes).await,
    };
    // An answer after the crash never reached a client: the process was
    // dead. The interrupted write may have taken effect or not.
    let hit = crashed.load(Ordering::SeqCst);
    if answered && !hit {
        acked.insert(key.clone(), bytes.clone());
    }
    let interrupted = hit && !(release && answered);
    if hit {
        c.restart(victim)
            .await
            .map_err(|e| format!("restart: {e}"))?;
    }
    settle(&c).await;
    // Every acknowledged write reads back intact through every node.
    for (i, s) in c.services.iter().enumerate() {
        for (k, want) in &acked {
            if k == &key && interrupted {
                continue; // checked below
            }
            let got = read_object(s, &bucket, k).await;
            if got.as_ref().ok().and_then(Option::as_ref) != Some(want) {
                return Err(format!(
                    "{k} through node {i}: {:?} ({} bytes acknowledged)",
                    got.map(|g| g.map(|b| b.len())),
                    want.len()
                ));
            }
        }
    }
    // Every listed object is readable, whole; the interrupted write left
    // either its old value or its new one.
    for (i, k) in listed(&c, &bucket).await? {
        let got = read_object(&c.services[i], &bucket, &k)
            .await
            .map_err(|e| format!("{k} is listed by node {i} but cannot be read: {e}"))?;
        let Some(got) = got else {
            return Err(format!("{k} is listed by node {i} but is not there"));
        };
        if k == key && interrupted && got != bytes && Some(&got) != before.as_ref() {
            return Err(format!(
                "{k} through node {i}: neither its old nor its new value"
            ));
        }
    }
    Ok(format!(
        "{} objects checked{}",
        acked.len(),
        if hit { "" } else { ", step not reached" }
    ))
}

fn cases() -> Vec<Case> {
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let (seeds, first) = (env("CRASH_SEEDS", 2), env("CRASH_FIRST_SEED", 1));
    let mut out = Vec::new();
    for point in CrashPoint::ALL {
        for (durability, crash) in [
            (Durability::NoFsync, Crash::Process),
            (Durability::Fsync, Crash::Process),
            (Durability::Fsync, Crash::Machine),
        ] {
            for seed in first..first + seeds {
                out.push(Case {
                    point,
                    durability,
                    crash,
                    seed,
                });
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_step_loses_nothing_acknowledged_and_shows_nothing_unreadable() {
    let parallel = std::env::var("CRASH_PARALLEL")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8usize)
        .max(1);
    let runs = futures::stream::iter(cases())
        .map(|case| async move {
            let r = tokio::spawn(run(case))
                .await
                .unwrap_or_else(|e| Err(format!("panicked: {e}")));
            if std::env::var_os("CRASH_TRACE").is_some() {
                eprintln!("{case:?}: {}", r.as_deref().unwrap_or("failed"));
            }
            (case, r)
        })
        .buffer_unordered(parallel)
        .collect::<Vec<_>>()
        .await;
    let reached = runs
        .iter()
        .filter(|(_, r)| r.as_deref().is_ok_and(|s| !s.contains("not reached")))
        .count();
    let failed: Vec<String> = runs
        .into_iter()
        .filter_map(|(case, r)| r.err().map(|e| format!("{case:?}: {e}")))
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    // Every step must have been reached in most cases, or this proves little.
    assert!(
        reached * 10 >= cases().len() * 8,
        "only {reached} runs reached their step"
    );
}
