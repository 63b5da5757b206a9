//! Data is released only when no version can use it: not on the word of an
//! in-flight record left by a crash after the commit, nor of one replica's
//! view, and not before a version that reached a single replica is known.

use std::sync::Arc;
use std::time::Duration;

use hangar_db::Crash;
use hangar_model::{CrashPoint, ObjectService, PutParams};
use hangar_net::memory::{Link, LinkState};
use hangar_testkit::{body, read_object, small_model_config, TestCluster};
use hangar_util::Uuid;

fn pattern(seed: usize, n: usize) -> Vec<u8> {
    (0..n).map(|i| ((i * 7 + seed * 13) % 251) as u8).collect()
}

/// Runs every node's release worker and garbage collection (no delays in
/// tests) until they find nothing more to do.
async fn release_everywhere(c: &TestCluster) {
    for _ in 0..3 {
        for s in &c.services {
            s.release_some(10_000).await.expect("release");
            s.blocks().collect_garbage(10_000).await.expect("gc");
        }
    }
}

/// How many block files each node holds.
fn block_files(c: &TestCluster) -> Vec<usize> {
    c.services
        .iter()
        .map(|s| s.blocks().count_files())
        .collect()
}

/// Reads `key` through every node; it must be `want`. Anti-entropy runs
/// between attempts, for up to 10 s, so a version held by one replica has
/// time to spread.
async fn assert_reads(c: &TestCluster, bucket: &Uuid, key: &str, want: &[u8]) {
    let mut wrong = Vec::new();
    for _ in 0..20 {
        wrong.clear();
        for (i, s) in c.services.iter().enumerate() {
            match read_object(s, bucket, key).await {
                Ok(Some(got)) if got == want => {}
                Ok(Some(got)) => wrong.push(format!("node {i}: {} other bytes", got.len())),
                Ok(None) => wrong.push(format!("node {i}: no such key")),
                Err(e) => wrong.push(format!("node {i}: {e}")),
            }
        }
        if wrong.is_empty() {
            return;
        }
        for s in &c.services {
            s.sync_tables().await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("{key}: {wrong:?}");
}

/// Crashes node `node` the first time it reaches `point`.
fn crash_at(c: &TestCluster, node: usize, point: CrashPoint) {
    let crash = c.crasher(node, Crash::Process);
    let done = std::sync::atomic::AtomicBool::new(false);
    c.services[node].set_crash_hook(Arc::new(move |p| {
        if p == point && !done.swap(true, std::sync::atomic::Ordering::SeqCst) {
            crash();
        }
    }));
}

async fn put(svc: &ObjectService, bucket: Uuid, key: &str, data: &[u8]) -> bool {
    let put = svc.put_object(bucket, key, PutParams::default(), body(data));
    matches!(
        tokio::time::timeout(Duration::from_secs(3), put).await,
        Ok(Ok(_))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_committed_just_before_a_crash_keeps_its_data() {
    let mut c = TestCluster::start(3, 3, small_model_config())
        .await
        .expect("cluster");
    let bucket = c.services[0]
        .create_bucket("bucket", None)
        .await
        .expect("bucket");
    let data = pattern(1, 10_000);
    // Killed after the commit reached its quorum, before the in-flight
    // record was settled: the object is there, the record too.
    crash_at(&c, 0, CrashPoint::AfterCommit);
    assert!(!put(&c.services[0], bucket, "k", &data).await);
    c.restart(0).await.expect("restart");
    assert_eq!(c.services[0].release_queue_len().expect("len"), 1);
    let files = block_files(&c);
    release_everywhere(&c).await;
    assert_eq!(block_files(&c), files, "no block file deleted");
    // Kept: the release asked the replicas, which hold the version.
    assert_eq!(c.services[0].release_queue_len().expect("len"), 0);
    assert_reads(&c, &bucket, "k", &data).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_that_reached_one_replica_keeps_its_data_and_spreads() {
    let mut c = TestCluster::start(3, 3, small_model_config())
        .await
        .expect("cluster");
    let bucket = c.services[0]
        .create_bucket("bucket", None)
        .await
        .expect("bucket");
    let data = pattern(2, 10_000);
    // The commit merges on node 0 (a replica) and goes nowhere else: node 0's
    // links fall silent as it sends it. Node 0 dies while it waits.
    let (net, ids, latency) = (
        c.cluster.net.clone(),
        c.cluster.ids.clone(),
        c.cluster.latency,
    );
    let silence = move |_: CrashPoint| {
        for other in &ids[1..] {
            let link = Link {
                state: LinkState::Silent,
                ..Link::with_latency(latency)
            };
            net.set_link(ids[0], *other, link);
        }
    };
    let armed = std::sync::atomic::AtomicBool::new(true);
    c.services[0].set_crash_hook(Arc::new(move |p| {
        if p == CrashPoint::BeforeCommit && armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            silence(p);
        }
    }));
    assert!(!put(&c.services[0], bucket, "k", &data).await);
    c.crash(0);
    c.restart(0).await.expect("restart");
    // Nodes 1 and 2 have no copy; node 0 has one, which it kept through the
    // crash. The release must see it and keep the data.
    let files = block_files(&c);
    release_everywhere(&c).await;
    assert_eq!(block_files(&c), files, "no block file deleted");
    assert_eq!(c.services[0].release_queue_len().expect("len"), 0);
    // The version spreads; it is readable everywhere.
    assert_reads(&c, &bucket, "k", &data).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overwritten_data_is_released_while_a_replica_is_down() {
    let c = TestCluster::start(3, 3, small_model_config())
        .await
        .expect("cluster");
    let bucket = c.services[0]
        .create_bucket("bucket", None)
        .await
        .expect("bucket");
    assert!(put(&c.services[0], bucket, "k", &pattern(3, 10_000)).await);
    c.cluster.set_state(2, LinkState::Down);
    let newer = pattern(4, 10_000);
    assert!(put(&c.services[0], bucket, "k", &newer).await);
    // Node 2 cannot answer, but a write quorum holds the newer version: no
    // read can see the old one again.
    release_everywhere(&c).await;
    for s in &c.services[..2] {
        assert_eq!(s.release_queue_len().expect("len"), 0);
    }
    c.cluster.set_state(2, LinkState::Up);
    assert_reads(&c, &bucket, "k", &newer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_of_an_upload_that_never_committed_waits_for_every_replica_then_goes() {
    let mut c = TestCluster::start(3, 3, small_model_config())
        .await
        .expect("cluster");
    let bucket = c.services[0]
        .create_bucket("bucket", None)
        .await
        .expect("bucket");
    // Killed with every block stored, before the commit was sent.
    crash_at(&c, 0, CrashPoint::BeforeCommit);
    assert!(!put(&c.services[0], bucket, "k", &pattern(5, 10_000)).await);
    c.restart(0).await.expect("restart");
    // While node 2 cannot answer, nothing proves the version is nowhere.
    c.cluster.set_state(2, LinkState::Down);
    release_everywhere(&c).await;
    assert_eq!(c.services[0].release_queue_len().expect("len"), 1);
    // Once every replica says it has no such version, the data goes.
    c.cluster.set_state(2, LinkState::Up);
    let mut left = 1;
    for _ in 0..50 {
        release_everywhere(&c).await;
        left = c.services[0].release_queue_len().expect("len");
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "released once node 2 answered");
    for s in &c.services {
        assert_eq!(read_object(s, &bucket, "k").await, Ok(None));
    }
}
