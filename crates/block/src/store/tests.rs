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

mod failing_disk {
    use super::*;
    use crate::disk::{DiskOp, Fault, FaultyDisk};

    fn faulty_store(fsync: bool) -> (tempfile::TempDir, BlockStore, FaultyDisk) {
        let dir = tempfile::tempdir().expect("tempdir");
        let disk = FaultyDisk::new();
        let store = BlockStore::with_disk(
            BlockStoreConfig {
                data_dirs: vec![DataDir {
                    path: dir.path().join("d"),
                    capacity: 1,
                }],
                compression_level: None,
                fsync,
                gc_delay_msec: 0,
            },
            Db::open_in_memory().expect("db"),
            Clock::system(),
            Arc::new(disk.clone()),
        )
        .expect("store");
        (dir, store, disk)
    }

    /// Every file under the data directory (block or temporary).
    fn files(dir: &tempfile::TempDir) -> Vec<PathBuf> {
        fn walk(p: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
                let path = e.path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.push(path);
                }
            }
        }
        let mut out = Vec::new();
        walk(dir.path(), &mut out);
        out
    }

    fn block(n: u8) -> (Hash, Bytes) {
        let data = Bytes::from(vec![n; 10_000]);
        (Hash::of(&data), data)
    }

    fn os_code(e: &Error) -> Option<i32> {
        match e {
            Error::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    #[tokio::test]
    async fn a_write_that_fails_leaves_no_file_and_the_next_one_succeeds() {
        for (fault, errno) in [(Fault::Eio, 5), (Fault::NoSpace, 28)] {
            let (dir, store, disk) = faulty_store(false);
            let (hash, data) = block(1);
            disk.fail_next(DiskOp::Write, fault, 1);
            let e = store
                .write(hash, data.clone())
                .await
                .expect_err("write fails");
            assert_eq!(os_code(&e), Some(errno), "{fault:?}: {e}");
            assert!(!store.is_present(&hash), "{fault:?}");
            assert!(files(&dir).is_empty(), "{fault:?}: {:?}", files(&dir));
            store
                .write(hash, data.clone())
                .await
                .expect("the disk works again");
            assert_eq!(store.read(hash).await.expect("read"), data);
        }
    }

    #[tokio::test]
    async fn a_failed_fsync_or_rename_is_a_failed_write_and_leaves_no_block() {
        let (dir, store, disk) = faulty_store(true);
        let (hash, data) = block(2);
        // The file's own sync: nothing is renamed, the temporary file goes.
        disk.fail_next(DiskOp::Sync, Fault::Eio, 1);
        let e = store
            .write(hash, data.clone())
            .await
            .expect_err("write fails");
        assert_eq!(os_code(&e), Some(5), "{e}");
        assert!(!store.is_present(&hash));
        assert!(files(&dir).is_empty(), "{:?}", files(&dir));
        // A rename that fails leaves no block either.
        disk.fail_next(DiskOp::Rename, Fault::Eio, 1);
        store
            .write(hash, data.clone())
            .await
            .expect_err("rename fails");
        assert!(!store.is_present(&hash));
        assert!(files(&dir).is_empty(), "{:?}", files(&dir));
        store
            .write(hash, data.clone())
            .await
            .expect("the disk works again");
        assert_eq!(store.read(hash).await.expect("read"), data);
        assert_eq!(
            disk.hits(),
            vec![(DiskOp::Sync, Fault::Eio), (DiskOp::Rename, Fault::Eio)]
        );
    }

    #[tokio::test]
    async fn a_failed_directory_sync_is_a_failed_write_and_a_retry_syncs_again() {
        let (_dir, store, disk) = faulty_store(true);
        let (hash, data) = block(4);
        // The file's sync goes through, the directory's (after the rename) fails.
        disk.fail_after(DiskOp::Sync, Fault::Eio, 1);
        let e = store
            .write(hash, data.clone())
            .await
            .expect_err("not durable");
        assert_eq!(os_code(&e), Some(5), "{e}");
        // The file has its name but is not acknowledged. A retry finds it and
        // syncs it and its directory before answering: a sync failing then
        // fails the retry too.
        assert!(store.is_present(&hash));
        disk.fail_after(DiskOp::Sync, Fault::Eio, 1);
        store
            .write(hash, data.clone())
            .await
            .expect_err("the directory sync fails again");
        store.write(hash, data.clone()).await.expect("durable now");
        assert_eq!(store.read(hash).await.expect("read"), data);
        assert_eq!(disk.hits().len(), 2);
    }

    #[tokio::test]
    async fn a_torn_write_is_found_on_read_quarantined_and_never_served() {
        let (dir, store, disk) = faulty_store(false);
        let (hash, data) = block(6);
        disk.fail_next(DiskOp::Write, Fault::Torn, 1);
        // The disk said yes.
        store
            .write(hash, data.clone())
            .await
            .expect("torn write reports success");
        assert!(store.is_present(&hash));
        let e = store
            .read(hash)
            .await
            .expect_err("a torn block is not served");
        assert!(matches!(e, Error::Corrupt { .. }), "{e}");
        assert!(!store.is_present(&hash), "quarantined");
        assert!(files(&dir)
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "corrupted")));
        // A fresh copy (from a peer, in a cluster) takes its place.
        store.write(hash, data.clone()).await.expect("rewrite");
        assert_eq!(store.read(hash).await.expect("read"), data);
    }

    #[tokio::test]
    async fn a_read_error_is_an_error_not_a_missing_block() {
        let (_dir, store, disk) = faulty_store(false);
        let (hash, data) = block(7);
        store.write(hash, data.clone()).await.expect("write");
        disk.fail_next(DiskOp::Read, Fault::Eio, 1);
        let e = store.read(hash).await.expect_err("EIO");
        assert_eq!(os_code(&e), Some(5), "{e}");
        // The file is left alone: the medium may answer next time.
        assert!(store.is_present(&hash));
        assert_eq!(store.read(hash).await.expect("read"), data);
        assert_eq!(
            disk.hits(),
            vec![(DiskOp::Read, Fault::Eio)],
            "one fault, one hit"
        );
    }
}
