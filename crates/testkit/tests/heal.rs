//! Reads right after a partition heals: no node may answer from replicas
//! that missed acknowledged writes.
//!
//! The sequence that once returned stale values, seeded: 5 nodes in 3 zones
//! (a: n0 n1, b: n2 n3, c: n4), replication factor 3, 25 ms each way between
//! zones, metadata without fsync. A layout change leaves several versions
//! live (n4 removed, then added back); a node of {n0, n1, n2} restarts with
//! its clock 31 s ahead; a split cuts {n3, n4} (a zone and a half) from
//! {n0, n1, n2}, silent at first, then closing the connections (as QUIC's
//! idle timeout does), while writes go on through the majority side up to
//! the heal; at the heal, the same node is killed and restarts with a
//! correct clock, and reads go through the minority side at once. Every read
//! that answers must return the last acknowledged value; after settling,
//! every node must.
//!
//! The cause was the restarted node: without fsync, a killed process lost
//! its commits of the last second, writes it had acknowledged as one of a
//! write quorum. Right after the heal, the minority side reconnects to the
//! restarted node first (it dials everyone as it starts; the others'
//! connections come back with the redial backoff), and a read quorum of a
//! minority node and the restarted one missed those writes. The metadata
//! write-ahead log keeps them (crate `hangar-db`).
//!
//! `HEAL_SEEDS` (default 16) seeds run from `HEAL_FIRST_SEED` (default 1),
//! `HEAL_PARALLEL` (default 4) at a time.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use futures::StreamExt;
use hangar_cluster::history::NodeRole;
use hangar_cluster::Partition;
use hangar_model::{ObjectService, PutParams};
use hangar_net::memory::{Link, LinkState};
use hangar_testkit::{body, read_object, small_model_config, TestCluster};
use hangar_util::clock::{Clock, SystemWallClock, WallClock};
use hangar_util::Uuid;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const ZONES: [&str; 5] = ["a", "a", "b", "b", "c"];
const MINORITY: [usize; 2] = [3, 4];
const MAJORITY: [usize; 3] = [0, 1, 2];
const INTER_ZONE: Duration = Duration::from_millis(25);
const INTRA_ZONE: Duration = Duration::from_micros(200);
/// Keys, and writers going on at once during the split (each owns the keys
/// equal to its number modulo `WRITERS`, so each key's writes are ordered).
const KEYS: usize = 24;
const WRITERS: usize = 6;
/// Buckets the keys are spread over (each bucket's objects live on the
/// replicas of one partition).
const BUCKETS: usize = 2;
/// How long a client waits for an answer.
const WAIT: Duration = Duration::from_secs(2);
/// How long a client waits for a write during the split: writes go on up
/// to the heal, so that the last ones are acknowledged just before it.
const SPLIT_WAIT: Duration = Duration::from_millis(400);

/// The system clock moved by a fixed offset (a machine whose clock is off).
struct OffsetClock(u64);

impl WallClock for OffsetClock {
    fn now_msec(&self) -> u64 {
        SystemWallClock.now_msec() + self.0
    }
}

/// Links by zone, all up.
fn links_up(c: &TestCluster) {
    let ids = &c.cluster.ids;
    for a in 0..ids.len() {
        for b in a + 1..ids.len() {
            let latency = if ZONES[a] == ZONES[b] {
                INTRA_ZONE
            } else {
                INTER_ZONE
            };
            c.cluster
                .net
                .set_link(ids[a], ids[b], Link::with_latency(latency));
        }
    }
}

/// Cuts {n3, n4} from {n0, n1, n2}: `Silent` drops packets, `Down` closes
/// the connections too, as QUIC does once a silent link has been idle 10 s.
fn split(c: &TestCluster, state: LinkState) {
    let ids = &c.cluster.ids;
    for a in MINORITY {
        for b in MAJORITY {
            let link = Link {
                state,
                ..Link::with_latency(INTER_ZONE)
            };
            c.cluster.net.set_link(ids[a], ids[b], link);
        }
    }
}

/// What clients were told per key (the bytes, or `None` once deleted), and
/// the keys a failed request makes uncertain for the rest of the run (a
/// write that failed may still win, with a clock 31 s ahead).
#[derive(Default)]
struct Model {
    expected: BTreeMap<usize, Option<Vec<u8>>>,
    uncertain: BTreeSet<usize>,
}

impl Model {
    fn known(&self) -> impl Iterator<Item = (&usize, &Option<Vec<u8>>)> {
        self.expected
            .iter()
            .filter(|(k, _)| !self.uncertain.contains(*k))
    }
}

/// Key `i`: its bucket and name.
fn key_of(buckets: &[Uuid], i: usize) -> (Uuid, String) {
    (buckets[i % buckets.len()], format!("k{i}"))
}

/// One write or delete of a random key through `svc`.
async fn write_one(rng: &mut StdRng, svc: &ObjectService, buckets: &[Uuid], model: &mut Model) {
    let i = rng.gen_range(0..KEYS);
    write_key(rng, svc, buckets, model, i, WAIT).await;
}

/// One write or delete of key `i` through `svc`, waiting at most `wait`.
async fn write_key(
    rng: &mut StdRng,
    svc: &ObjectService,
    buckets: &[Uuid],
    model: &mut Model,
    i: usize,
    wait: Duration,
) {
    let (bucket, key) = key_of(buckets, i);
    let value = if rng.gen_bool(0.8) {
        // Small objects, stored in their entry: block writes need their
        // blocks' partitions, often out of reach during the split.
        let len = [10, 60, 90][rng.gen_range(0..3)];
        Some((0..len).map(|_| rng.gen()).collect::<Vec<u8>>())
    } else {
        None
    };
    let ok = match &value {
        Some(data) => {
            let put = svc.put_object(bucket, &key, PutParams::default(), body(data));
            matches!(tokio::time::timeout(wait, put).await, Ok(Ok(_)))
        }
        None => {
            let delete = svc.delete_object(bucket, &key);
            matches!(tokio::time::timeout(wait, delete).await, Ok(Ok(())))
        }
    };
    if ok {
        model.expected.insert(i, value);
    } else {
        model.uncertain.insert(i);
    }
}

fn describe(v: &Option<Vec<u8>>) -> String {
    v.as_ref()
        .map_or("no such key".into(), |b| format!("{} bytes", b.len()))
}

/// Reads every known key through `svc` once; returns the wrong answers
/// (an error or no answer is not wrong: the node may not reach a quorum).
async fn stale_reads(
    svc: &ObjectService,
    buckets: &[Uuid],
    model: &Model,
    who: usize,
) -> Vec<String> {
    let mut wrong = Vec::new();
    for (i, want) in model.known() {
        let (bucket, key) = key_of(buckets, *i);
        let got = tokio::time::timeout(WAIT, read_object(svc, &bucket, &key)).await;
        if let Ok(Ok(got)) = got {
            if &got != want {
                wrong.push(format!(
                    "{key} through n{who}: got {}, expected {}",
                    describe(&got),
                    describe(want)
                ));
            }
        }
    }
    wrong
}

async fn run_seed(seed: u64) -> Result<String, String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut c = TestCluster::start(5, 3, small_model_config())
        .await
        .map_err(|e| e.to_string())?;
    // Zones a a b b c; then n4 removed and added back: versions live.
    let ids = c.cluster.ids.clone();
    let layout = c.cluster.systems[0].layout();
    let step = |f: &dyn Fn(
        &mut hangar_cluster::LayoutHistory,
        u64,
    ) -> Result<(), hangar_cluster::history::LayoutError>| {
        layout.update(|h, ts| f(h, ts)).map_err(|e| e.to_string())
    };
    for (i, zone) in ZONES.iter().enumerate() {
        step(&|h, ts| h.stage_role(ids[i], NodeRole::storage(*zone, 1 << 40), ts))?;
    }
    step(&|h, ts| h.apply(Some(2), ts).map(drop))?;
    step(&|h, ts| h.stage_remove(ids[4], ts))?;
    step(&|h, ts| h.apply(Some(3), ts).map(drop))?;
    step(&|h, ts| h.stage_role(ids[4], NodeRole::storage("c", 1 << 40), ts))?;
    step(&|h, ts| h.apply(Some(4), ts).map(drop))?;
    hangar_cluster::testing::wait_until("layout version 4 everywhere", || {
        c.cluster
            .systems
            .iter()
            .all(|s| s.layout().snapshot().current().version == 4)
    })
    .await;
    // Buckets whose objects the majority side can write in every live
    // version, and whose reads go to a set holding the restarted node and a
    // node of the minority side: where a read through the minority side
    // right after the heal can meet the restarted node rather than the
    // others that took the writes. (Each bucket's objects live on one
    // partition, chosen by its random id.)
    let history = c.cluster.systems[0].layout().snapshot();
    let (writes, read) = (history.write_layouts(), history.read_layout());
    let on = |nodes: &[hangar_cluster::NodeId], side: &[usize]| {
        nodes
            .iter()
            .filter(|n| side.iter().any(|m| ids[*m] == **n))
            .count()
    };
    // The node restarted (with a skewed clock, then at the heal) is the one
    // of the majority side with the most such partitions.
    let wanted = |r: usize| -> Vec<Partition> {
        (0..256)
            .map(Partition)
            .filter(|p| {
                let writable = writes
                    .iter()
                    .all(|l| on(l.partition_nodes(*p), &MAJORITY) >= l.params().write_quorum());
                let readers = read.partition_nodes(*p);
                writable && on(readers, &[r]) == 1 && on(readers, &MINORITY) >= 1
            })
            .collect()
    };
    let r = MAJORITY
        .into_iter()
        .max_by_key(|r| wanted(*r).len())
        .expect("nodes");
    let wanted = wanted(r);
    if wanted.is_empty() {
        return Ok("skipped: no partition where a stale read could happen".into());
    }
    let mut buckets = Vec::new();
    for b in 0..1000 {
        if buckets.len() == BUCKETS {
            break;
        }
        let id = c.services[0]
            .create_bucket(&format!("heal-{b}"), None)
            .await
            .map_err(|e| e.to_string())?;
        let p = Partition::of(&hangar_model::schema::object::bucket_partition(&id));
        if wanted.contains(&p) {
            buckets.push(id);
        }
    }
    if buckets.is_empty() {
        return Ok("skipped: no bucket of 1,000 fell in such a partition".into());
    }
    let buckets = Arc::new(buckets);
    // The zones' distances, from now on.
    links_up(&c);
    let mut model = Model::default();
    for _ in 0..10 {
        let n = rng.gen_range(0..5);
        write_one(&mut rng, &c.services[n], &buckets, &mut model).await;
    }
    // The restarted node comes back with its clock 31 s ahead.
    c.crash(r);
    c.restart_with_clock(r, Clock::new(Arc::new(OffsetClock(31_000))))
        .await
        .map_err(|e| format!("restart: {e}"))?;
    links_up(&c);
    for _ in 0..10 {
        let n = rng.gen_range(0..5);
        write_one(&mut rng, &c.services[n], &buckets, &mut model).await;
    }
    // The split, silent then closed; writes through the majority side until
    // the heal.
    split(&c, LinkState::Silent);
    let closed_at = Instant::now() + Duration::from_millis(rng.gen_range(200..1000));
    let until = closed_at + Duration::from_millis(rng.gen_range(1000..2500));
    let majority: Vec<ObjectService> = MAJORITY.iter().map(|n| c.services[*n].clone()).collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (majority, buckets) = (majority.clone(), buckets.clone());
            let mut rng = StdRng::seed_from_u64(seed * 1000 + w as u64);
            tokio::spawn(async move {
                let mut mine = Model::default();
                tokio::time::sleep(Duration::from_millis(5 * w as u64)).await;
                while Instant::now() < until {
                    let i = w + WRITERS * rng.gen_range(0..KEYS / WRITERS);
                    let svc = &majority[rng.gen_range(0..majority.len())];
                    write_key(&mut rng, svc, &buckets, &mut mine, i, SPLIT_WAIT).await;
                }
                mine
            })
        })
        .collect();
    tokio::time::sleep_until(closed_at).await;
    split(&c, LinkState::Down);
    for w in writers {
        let mine = w.await.map_err(|e| e.to_string())?;
        for k in mine.uncertain {
            model.uncertain.insert(k);
        }
        for (k, v) in mine.expected {
            if !model.uncertain.contains(&k) {
                model.expected.insert(k, v);
            }
        }
    }
    // The heal; the restarted node killed at the same moment, and back with
    // a correct clock.
    links_up(&c);
    c.crash(r);
    let readers: Vec<(usize, ObjectService)> = MINORITY
        .iter()
        .map(|n| (*n, c.services[*n].clone()))
        .collect();
    let reads = {
        let buckets = buckets.clone();
        let model = Model {
            expected: model.known().map(|(k, v)| (*k, v.clone())).collect(),
            uncertain: BTreeSet::new(),
        };
        tokio::spawn(async move {
            let mut wrong = Vec::new();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(2) {
                for (n, svc) in &readers {
                    wrong.extend(stale_reads(svc, &buckets, &model, *n).await);
                }
            }
            wrong
        })
    };
    c.restart_with_clock(r, Clock::system())
        .await
        .map_err(|e| format!("restart: {e}"))?;
    links_up(&c);
    let wrong = reads.await.map_err(|e| e.to_string())?;
    if !wrong.is_empty() {
        return Err(format!("stale reads right after the heal: {wrong:?}"));
    }
    // Settled: every node answers, and right.
    let mut wrong = Vec::new();
    for _ in 0..20 {
        wrong.clear();
        for (n, svc) in c.services.iter().enumerate() {
            for (i, want) in model.known() {
                let (bucket, key) = key_of(&buckets, *i);
                match read_object(svc, &bucket, &key).await {
                    Ok(got) if &got == want => {}
                    Ok(got) => wrong.push(format!("{key} through n{n}: got {}", describe(&got))),
                    Err(e) => wrong.push(format!("{key} through n{n}: {e}")),
                }
            }
        }
        if wrong.is_empty() {
            return Ok(format!(
                "{} keys checked, {} uncertain",
                model.known().count(),
                model.uncertain.len()
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(format!("after settling: {wrong:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_through_the_minority_side_right_at_a_heal_are_never_stale() {
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let seeds = env("HEAL_SEEDS", 16);
    let first = env("HEAL_FIRST_SEED", 1);
    let parallel = env("HEAL_PARALLEL", 4).max(1) as usize;
    let runs = futures::stream::iter(first..first + seeds)
        .map(|seed| async move {
            let t = Instant::now();
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
                format!("seed {seed} (replay with HEAL_FIRST_SEED={seed} HEAL_SEEDS=1): {e}")
            })
        })
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
