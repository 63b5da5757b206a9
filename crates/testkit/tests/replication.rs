//! The object service on in-memory clusters: writes through one node are
//! read through the others, a node that missed writes is repaired, and a
//! layout change moves the data, retires the old version and drops what the
//! leaving node held.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use hangar_cluster::history::Tracker;
use hangar_cluster::testing::wait_until;
use hangar_model::{BodyStream, LayoutSyncStep, ModelConfig, ObjectService, PutParams};
use hangar_net::memory::LinkState;
use hangar_testkit::TestCluster;
use hangar_util::Uuid;

fn config() -> ModelConfig {
    hangar_testkit::small_model_config()
}

fn body(data: &[u8]) -> BodyStream {
    let chunks: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(1000)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures::stream::iter(chunks))
}

fn pattern(seed: usize, n: usize) -> Vec<u8> {
    (0..n).map(|i| ((i * 7 + seed * 13) % 251) as u8).collect()
}

async fn read(svc: &ObjectService, bucket: &Uuid, key: &str) -> Vec<u8> {
    let (_, data) = svc.get_object(bucket, key).await.expect("get");
    let size = data.meta().expect("meta").size;
    let mut s = svc.read_data(&data, 0..size);
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.expect("chunk"));
    }
    out
}

/// Objects of several sizes: inline, one block, several blocks.
fn objects() -> Vec<(String, Vec<u8>)> {
    (0..12)
        .map(|i| (format!("k{i:02}"), pattern(i, [50, 3000, 10_000][i % 3])))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_missed_writes_gets_the_blocks_it_references() {
    let c = TestCluster::start(3, 3, config()).await.expect("cluster");
    let bucket = c.services[0]
        .create_bucket("bucket", None)
        .await
        .expect("bucket");
    c.cluster.set_state(2, LinkState::Silent);
    let data = pattern(1, 10_000);
    c.services[0]
        .put_object(bucket, "k", PutParams::default(), body(&data))
        .await
        .expect("put without node 2");
    c.cluster.set_state(2, LinkState::Up);
    // Anti-entropy brings node 2 the metadata; its block references queue
    // the blocks, which resync fetches.
    assert_eq!(c.services[2].sync_tables().await, 0);
    let blocks = c.services[2].blocks().count_files();
    assert_eq!(blocks, 0, "node 2 saw no block of the write");
    let r = c.services[2]
        .data()
        .resync_some(100, true)
        .await
        .expect("resync");
    assert_eq!((r.fetched, r.failed), (3, 0), "{r:?}");
    assert_eq!(c.services[2].blocks().count_files(), 3);
    let first = hangar_util::Hash::of(&data[..4096]);
    let local = c.services[2]
        .blocks()
        .read(first)
        .await
        .expect("local copy");
    assert_eq!(&local[..], &data[..4096]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layout_change_moves_the_data_and_retires_the_old_version() {
    let c = TestCluster::start(4, 3, config()).await.expect("cluster");
    let svc = &c.services;
    let bucket = svc[0].create_bucket("bucket", None).await.expect("bucket");
    for (k, v) in objects() {
        svc[0]
            .put_object(bucket, &k, PutParams::default(), body(&v))
            .await
            .expect("put");
    }
    let sync_all = || async {
        for s in svc {
            s.layout_sync_step().await.expect("layout sync step");
        }
    };
    // Version 1: every node syncs (nothing moves).
    for _ in 0..50 {
        sync_all().await;
        if c.cluster.systems[0]
            .layout()
            .snapshot()
            .tracker_min(Tracker::Sync)
            >= 1
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let leaving = c.cluster.ids[0];
    c.cluster.systems[1]
        .layout()
        .update(|h, ts| h.stage_remove(leaving, ts))
        .expect("stage");
    c.cluster.systems[1]
        .layout()
        .update(|h, ts| h.apply(Some(2), ts))
        .expect("apply");
    wait_until("version 2 everywhere", || {
        c.cluster
            .systems
            .iter()
            .all(|s| s.layout().snapshot().current().version == 2)
    })
    .await;
    // While it is in flight, writes reach both versions and reads work.
    svc[1]
        .put_object(
            bucket,
            "during",
            PutParams::default(),
            body(&pattern(99, 9000)),
        )
        .await
        .expect("put during the change");
    let mut synced = false;
    for _ in 0..100 {
        sync_all().await;
        let h = c.cluster.systems[3].layout().snapshot();
        if h.live_versions().len() == 1 && h.tracker_min(Tracker::SyncAck) >= 2 {
            synced = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(synced, "version 1 retires once every node synced version 2");
    // The leaving node drops what it held at its next step.
    sync_all().await;
    assert_eq!(
        svc[0].layout_sync_step().await.expect("step"),
        LayoutSyncStep::Idle
    );
    assert!(svc[0].blocks().count_files() > 0);
    svc[0].blocks().collect_garbage(10_000).await.expect("gc");
    assert_eq!(
        svc[0].blocks().count_files(),
        0,
        "the leaving node deletes the blocks it no longer holds"
    );
    // Without the leaving node, everything is there, through every remaining node.
    c.cluster.set_state(0, LinkState::Down);
    let mut all = objects();
    all.push(("during".to_string(), pattern(99, 9000)));
    for s in &svc[1..] {
        for (k, v) in &all {
            assert_eq!(&read(s, &bucket, k).await, v, "{k}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_write_wins_through_a_node_whose_clock_is_behind() {
    use hangar_util::clock::{Clock, ManualWallClock, SystemWallClock, WallClock};
    // Node 0's clock is a minute ahead of the others.
    let ahead = SystemWallClock.now_msec() + 60_000;
    let clocks = vec![
        Clock::new(std::sync::Arc::new(ManualWallClock::new(ahead))),
        Clock::system(),
        Clock::system(),
    ];
    let c = TestCluster::start_with_clocks(3, config(), clocks)
        .await
        .expect("cluster");
    let bucket = c.services[0]
        .create_bucket("bucket", None)
        .await
        .expect("bucket");
    // Node 1 misses the first writes: its own copy cannot tell it of them.
    c.cluster.set_state(1, LinkState::Silent);
    for (key, n) in [("small", 50), ("big", 10_000), ("gone", 3000)] {
        c.services[0]
            .put_object(bucket, key, PutParams::default(), body(&pattern(0, n)))
            .await
            .expect("first write");
    }
    c.cluster.set_state(1, LinkState::Up);

    // Later writes through node 1, timestamped a minute before the first.
    for (key, n) in [("small", 60), ("big", 12_000)] {
        c.services[1]
            .put_object(bucket, key, PutParams::default(), body(&pattern(1, n)))
            .await
            .expect("second write");
    }
    c.services[1]
        .delete_object(bucket, "gone")
        .await
        .expect("delete");
    for s in &c.services {
        assert_eq!(read(s, &bucket, "small").await, pattern(1, 60));
        assert_eq!(read(s, &bucket, "big").await, pattern(1, 12_000));
        assert!(matches!(
            s.get_object(&bucket, "gone").await,
            Err(hangar_model::Error::NoSuchKey)
        ));
    }

    // The data of the versions that lost goes; what won stays readable.
    for s in &c.services {
        s.release_some(10_000).await.expect("release");
        s.blocks().collect_garbage(10_000).await.expect("gc");
    }
    for s in &c.services {
        assert_eq!(read(s, &bucket, "big").await, pattern(1, 12_000));
    }
}
