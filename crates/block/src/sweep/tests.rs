//! The sweep compares with the modification times of real files: real time.
#![allow(
    clippy::disallowed_methods,
    reason = "file times are the operating system's"
)]

use std::sync::Arc;

use bytes::Bytes;
use hangar_db::Db;
use hangar_util::clock::{Clock, ManualWallClock};

use super::*;
use crate::dirs::block_path;
use crate::{BlockStoreConfig, DataDir};

const GC_DELAY_MSEC: u64 = 10_000;

struct Fixture {
    dir: tempfile::TempDir,
    store: BlockStore,
    wall: Arc<ManualWallClock>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let wall = Arc::new(ManualWallClock::new(1_000_000));
    let store = BlockStore::new(
        BlockStoreConfig {
            data_dirs: vec![DataDir {
                path: dir.path().join("d"),
                capacity: 1,
            }],
            compression_level: None,
            fsync: false,
            gc_delay_msec: GC_DELAY_MSEC,
        },
        Db::open_in_memory().expect("db"),
        Clock::new(wall.clone()),
    )
    .expect("store");
    Fixture { dir, store, wall }
}

async fn referenced(store: &BlockStore, data: &'static [u8]) -> Hash {
    let hash = Hash::of(data);
    let s = store.clone();
    store
        .db()
        .transaction(move |tx| s.incref(tx, &hash))
        .await
        .expect("incref");
    store
        .write(hash, Bytes::from_static(data))
        .await
        .expect("write");
    hash
}

#[tokio::test]
async fn leftovers_of_a_crash_are_cleaned_and_referenced_blocks_kept() {
    let f = fixture();
    let kept = referenced(&f.store, b"a referenced block").await;
    // A block whose reference was lost in a crash, and a write cut short.
    let orphan_data = Bytes::from_static(b"an orphan block");
    let orphan = Hash::of(&orphan_data);
    f.store.write(orphan, orphan_data).await.expect("write");
    let orphan_path = block_path(&f.dir.path().join("d"), &orphan);
    let temp = orphan_path.with_extension("tmp7");
    std::fs::write(&temp, b"partial").expect("temp file");

    // Young files are left alone: they may belong to writes in progress.
    let report = f
        .store
        .sweep(SystemTime::now() - Duration::from_secs(3600))
        .await
        .expect("sweep");
    assert_eq!(
        report,
        SweepReport {
            block_files: 2,
            temp_files_removed: 0,
            orphans_queued: 0
        }
    );
    assert!(temp.exists());

    let report = f
        .store
        .sweep(SystemTime::now() + Duration::from_secs(1))
        .await
        .expect("sweep");
    assert_eq!(
        report,
        SweepReport {
            block_files: 2,
            temp_files_removed: 1,
            orphans_queued: 1
        }
    );
    assert!(!temp.exists());

    // The orphan goes only after the grace delay, like any unreferenced block.
    assert_eq!(f.store.collect_garbage(100).await.expect("gc"), 0);
    f.wall.advance(GC_DELAY_MSEC + 1);
    assert_eq!(f.store.collect_garbage(100).await.expect("gc"), 1);
    assert!(!orphan_path.exists());
    assert_eq!(
        f.store.read(kept).await.expect("read"),
        Bytes::from_static(b"a referenced block")
    );
}

#[tokio::test]
async fn an_orphan_referenced_again_before_collection_is_kept() {
    let f = fixture();
    let data = Bytes::from_static(b"soon shared again");
    let hash = Hash::of(&data);
    f.store.write(hash, data.clone()).await.expect("write");
    let report = f
        .store
        .sweep(SystemTime::now() + Duration::from_secs(1))
        .await
        .expect("sweep");
    assert_eq!(report.orphans_queued, 1);
    // A new upload of the same bytes takes a reference (and finds the file).
    referenced(&f.store, b"soon shared again").await;
    f.wall.advance(GC_DELAY_MSEC + 1);
    assert_eq!(f.store.collect_garbage(100).await.expect("gc"), 0);
    assert_eq!(f.store.read(hash).await.expect("read"), data);
}
