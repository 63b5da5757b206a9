use super::*;
use hangar_util::clock::ManualWallClock;

struct Fixture {
    _dir: tempfile::TempDir,
    store: BlockStore,
    wall: Arc<ManualWallClock>,
    db: Db,
}

fn fixture(compression_level: Option<i32>) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open_in_memory().expect("db");
    let wall = Arc::new(ManualWallClock::new(1_000_000));
    let store = BlockStore::new(
        BlockStoreConfig {
            data_dirs: vec![
                DataDir {
                    path: dir.path().join("d1"),
                    capacity: 1,
                },
                DataDir {
                    path: dir.path().join("d2"),
                    capacity: 1,
                },
            ],
            compression_level,
            fsync: false,
            gc_delay_msec: 10_000,
        },
        db.clone(),
        Clock::new(wall.clone()),
    )
    .expect("store");
    Fixture {
        _dir: dir,
        store,
        wall,
        db,
    }
}

#[tokio::test]
async fn blocks_round_trip_with_and_without_compression() {
    for level in [None, Some(1)] {
        let f = fixture(level);
        let data = Bytes::from(vec![7u8; 100_000]);
        let hash = Hash::of(&data);
        f.store.write(hash, data.clone()).await.expect("write");
        assert_eq!(f.store.read(hash).await.expect("read"), data);
    }
}

#[tokio::test]
async fn a_corrupt_block_is_quarantined_not_served() {
    let f = fixture(None);
    let data = Bytes::from_static(b"some block data");
    let hash = Hash::of(&data);
    f.store.write(hash, data).await.expect("write");
    let path = f
        .store
        .inner
        .dirs
        .search_order(&hash)
        .map(|d| block_path(d, &hash))
        .find(|p| p.exists())
        .expect("block file");
    let mut raw = std::fs::read(&path).expect("read");
    raw[3] ^= 0x55;
    std::fs::write(&path, raw).expect("corrupt");
    assert!(matches!(
        f.store.read(hash).await,
        Err(Error::Corrupt { .. })
    ));
    assert!(!path.exists());
    assert!(path.with_extension("corrupted").exists());
}

#[tokio::test]
async fn unreferenced_blocks_are_deleted_only_after_the_grace_delay() {
    let f = fixture(None);
    let data = Bytes::from_static(b"gc me");
    let hash = Hash::of(&data);
    let s = f.store.clone();
    f.db.transaction(move |tx| s.incref(tx, &hash))
        .await
        .expect("incref");
    f.store.write(hash, data).await.expect("write");
    let s = f.store.clone();
    f.db.transaction(move |tx| s.decref(tx, &hash))
        .await
        .expect("decref");
    assert_eq!(f.store.collect_garbage(100).await.expect("gc"), 0);
    assert!(f.store.is_present(&hash));
    f.wall.advance(10_001);
    assert_eq!(f.store.collect_garbage(100).await.expect("gc"), 1);
    assert!(!f.store.is_present(&hash));
}

#[tokio::test]
async fn a_block_referenced_again_during_its_grace_delay_is_kept() {
    let f = fixture(None);
    let data = Bytes::from_static(b"keep me");
    let hash = Hash::of(&data);
    f.store.write(hash, data).await.expect("write");
    for op in [true, false, true] {
        let s = f.store.clone();
        f.db.transaction(move |tx| {
            if op {
                s.incref(tx, &hash)
            } else {
                s.decref(tx, &hash)
            }
        })
        .await
        .expect("rc");
    }
    f.wall.advance(20_000);
    assert_eq!(f.store.collect_garbage(100).await.expect("gc"), 0);
    assert!(f.store.is_present(&hash));
    assert_eq!(f.store.refcount(hash).await.expect("rc"), 1);
}
