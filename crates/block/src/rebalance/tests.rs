use std::sync::Arc;

use bytes::Bytes;
use hangar_db::Db;
use hangar_util::clock::{Clock, ManualWallClock};
use hangar_util::Hash;

use crate::dirs::block_files;
use crate::{BlockStore, BlockStoreConfig, DataDir};

fn store(dirs: &[(&std::path::Path, u64)], db: &Db) -> BlockStore {
    BlockStore::new(
        BlockStoreConfig {
            data_dirs: dirs
                .iter()
                .map(|(p, c)| DataDir {
                    path: p.to_path_buf(),
                    capacity: *c,
                })
                .collect(),
            compression_level: None,
            fsync: true,
            gc_delay_msec: 10_000,
        },
        db.clone(),
        Clock::new(Arc::new(ManualWallClock::new(1_000_000))),
    )
    .expect("store")
}

fn block(i: u32) -> Bytes {
    Bytes::from(format!("block number {i}").repeat(50))
}

#[tokio::test]
async fn blocks_move_to_their_directory_after_one_is_added() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let db = Db::open_in_memory().expect("db");
    let one = store(&[(&a, 100)], &db);
    for i in 0..200 {
        let data = block(i);
        one.write(Hash::of(&data), data).await.expect("write");
    }
    assert_eq!(block_files(&a).count(), 200);

    // A second directory of the same size: about half the blocks belong there.
    let two = store(&[(&a, 100), (&b, 100)], &db);
    let report = two.rebalance().await.expect("rebalance");
    assert_eq!(report.checked, 200);
    assert_eq!(report.failed, 0);
    let in_b = block_files(&b).count() as u64;
    assert_eq!(report.moved, in_b);
    assert!((60..=140).contains(&in_b), "{in_b} of 200 blocks moved");
    assert_eq!(block_files(&a).count() as u64 + in_b, 200);
    for i in 0..200 {
        let data = block(i);
        assert_eq!(two.read(Hash::of(&data)).await.expect("read"), data);
    }

    // Every block is where its hash says: a second pass moves nothing.
    let again = two.rebalance().await.expect("rebalance");
    assert_eq!((again.checked, again.moved), (200, 0));

    // Dropping directory b from the list's weight (capacity 0 is weighted 1):
    // back in a, nearly all of them.
    let back = store(&[(&a, 1_000_000), (&b, 0)], &db);
    back.rebalance().await.expect("rebalance");
    assert!(block_files(&b).count() < 5);
}

#[tokio::test]
async fn a_copy_already_in_place_is_kept_and_the_stray_one_removed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let db = Db::open_in_memory().expect("db");
    let two = store(&[(&a, 1), (&b, 1)], &db);
    let data = block(7);
    let hash = Hash::of(&data);
    two.write(hash, data.clone()).await.expect("write");
    // The same block also in the other directory (written under an older list).
    let (placed, _) = block_files(&a)
        .chain(block_files(&b))
        .find(|(h, _)| *h == hash)
        .map(|(h, p)| (p, h))
        .expect("block file");
    let other = if placed.starts_with(&a) { &b } else { &a };
    let stray = crate::dirs::block_path(other, &hash);
    std::fs::create_dir_all(stray.parent().expect("parent")).expect("mkdir");
    std::fs::copy(&placed, &stray).expect("copy");

    let report = two.rebalance().await.expect("rebalance");
    assert_eq!((report.checked, report.moved), (2, 1));
    assert!(placed.exists());
    assert!(!stray.exists());
    assert_eq!(two.read(hash).await.expect("read"), data);
}
