//! The seam suite: behaviour every engine configuration must show.

use super::*;

const T: Tree = Tree("t");
const U: Tree = Tree("u");

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("runtime")
}

fn suite(db: &Db) {
    rt().block_on(async {
        db.transaction(|tx| {
            tx.insert(T, b"a", b"1")?;
            tx.insert(T, b"b", b"2")?;
            tx.insert(U, b"a", b"x")?;
            Ok::<_, Error>(())
        })
        .await
        .expect("commit");
        assert_eq!(db.get(T, b"a").expect("get").as_deref(), Some(&b"1"[..]));
        assert_eq!(db.get(Tree("missing"), b"a").expect("get"), None);

        // A failing transaction leaves nothing behind.
        let r: Result<(), Error> = db
            .transaction(|tx| {
                tx.insert(T, b"c", b"3")?;
                tx.remove(T, b"a")?;
                Err(Error::Aborted("on purpose".into()))
            })
            .await;
        assert!(r.is_err());
        assert_eq!(db.get(T, b"c").expect("get"), None);
        assert!(db.get(T, b"a").expect("get").is_some());

        // Reads inside a transaction see its own writes, ranges included.
        let seen = db
            .transaction(|tx| {
                tx.insert(T, b"aa", b"new")?;
                tx.remove(T, b"b")?;
                let r = tx.range(T, b"a", None, 10)?;
                Ok::<_, Error>(r.into_iter().map(|(k, _)| k).collect::<Vec<_>>())
            })
            .await
            .expect("commit");
        assert_eq!(seen, vec![b"a".to_vec(), b"aa".to_vec()]);

        let r = db.range(T, b"a", Some(b"b"), 10).expect("range");
        assert_eq!(r.len(), 2);
        let r = db.range(T, b"", None, 1).expect("range");
        assert_eq!(r, vec![(b"a".to_vec(), b"1".to_vec())]);
    });
}

#[test]
fn in_memory_engine_passes_the_suite() {
    suite(&Db::open_in_memory().expect("open"));
}

#[test]
fn file_engine_passes_the_suite_and_persists() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("meta.redb");
    {
        let db = Db::open(&path, &DbConfig::default()).expect("open");
        suite(&db);
    }
    let db = Db::open(&path, &DbConfig::default()).expect("reopen");
    assert_eq!(db.get(T, b"aa").expect("get").as_deref(), Some(&b"new"[..]));
}

#[test]
fn concurrent_transactions_are_grouped_into_fewer_commits() {
    let db = Db::open_in_memory().expect("open");
    rt().block_on(async {
        let mut handles = Vec::new();
        for i in 0u32..200 {
            let db = db.clone();
            handles.push(tokio::spawn(async move {
                db.transaction(move |tx| {
                    // Read-modify-write of a shared counter: grouping must keep
                    // each increment.
                    let n = tx
                        .get(T, b"counter")?
                        .map(|v| u32::from_le_bytes(v.try_into().expect("4 bytes")))
                        .unwrap_or(0);
                    tx.insert(T, b"counter", &(n + 1).to_le_bytes())?;
                    tx.insert(U, &i.to_be_bytes(), b"")?;
                    Ok::<_, Error>(())
                })
                .await
            }));
        }
        for h in handles {
            h.await.expect("join").expect("commit");
        }
    });
    let v = db.get(T, b"counter").expect("get").expect("present");
    assert_eq!(u32::from_le_bytes(v.try_into().expect("4 bytes")), 200);
    let (txs, commits) = db.commit_stats();
    assert_eq!(txs, 200);
    assert!(commits <= txs);
}

#[test]
fn unsynced_commits_are_visible_at_once_and_made_durable_by_the_next_durable_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("meta.redb");
    {
        let db = Db::open(&path, &DbConfig::default()).expect("open");
        rt().block_on(async {
            db.transaction_unsynced(|tx| tx.insert(T, b"early", b"1"))
                .await
                .expect("unsynced commit");
            assert_eq!(
                db.get(T, b"early").expect("get").as_deref(),
                Some(&b"1"[..])
            );
            db.transaction(|tx| tx.insert(T, b"late", b"2"))
                .await
                .expect("durable commit");
        });
    }
    let db = Db::open(&path, &DbConfig::default()).expect("reopen");
    assert_eq!(
        db.get(T, b"early").expect("get").as_deref(),
        Some(&b"1"[..])
    );
    assert_eq!(db.get(T, b"late").expect("get").as_deref(), Some(&b"2"[..]));
}

#[tokio::test]
async fn commits_without_fsync_survive_a_reopen_after_a_second() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.redb");
    let config = crate::DbConfig {
        durability: crate::Durability::NoFsync,
        ..crate::DbConfig::default()
    };
    let db = crate::Db::open(&path, &config).expect("open");
    db.transaction(|tx| tx.insert(crate::Tree("t"), b"k", b"v"))
        .await
        .expect("commit");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    // What a killed process leaves: the file as written so far. Opening it
    // while the first handle still runs is refused, so copy it.
    let copy = dir.path().join("copy.redb");
    std::fs::copy(&path, &copy).expect("copy");
    let reopened = crate::Db::open(&copy, &config).expect("reopen");
    assert_eq!(
        reopened.get(crate::Tree("t"), b"k").expect("get"),
        Some(b"v".to_vec())
    );
    drop(db);
}

/// Without fsync, and no periodic sync during a test: what is durable is
/// only what the test makes so.
fn no_fsync() -> DbConfig {
    DbConfig {
        durability: Durability::NoFsync,
        sync_interval: std::time::Duration::from_secs(3600),
        ..DbConfig::default()
    }
}

/// Commits `n` transactions that each write one key, `k0000`... and return
/// once every one was acknowledged.
async fn commit_keys(db: &Db, from: u32, n: u32) {
    for i in from..from + n {
        let key = format!("k{i:04}");
        db.transaction(move |tx| tx.insert(T, key.as_bytes(), &i.to_le_bytes()))
            .await
            .expect("commit");
    }
}

fn keys_in(db: &Db) -> Vec<Vec<u8>> {
    db.range(T, b"", None, usize::MAX)
        .expect("range")
        .into_iter()
        .map(|(k, _)| k)
        .collect()
}

#[tokio::test]
async fn commits_without_fsync_survive_a_process_crash() {
    let disk = MemoryDisk::default();
    let db = Db::open_on(&disk, &no_fsync()).expect("open");
    commit_keys(&db, 0, 200).await;
    // Removals and overwrites are replayed too, in order.
    db.transaction(|tx| {
        tx.remove(T, b"k0003")?;
        tx.insert(T, b"k0004", b"changed")
    })
    .await
    .expect("commit");
    disk.crash(Crash::Process);
    // The crashed handle writes nothing more.
    assert!(db
        .transaction(|tx| tx.insert(T, b"late", b"x"))
        .await
        .is_err());
    let db = Db::open_on(&disk, &no_fsync()).expect("reopen");
    let keys = keys_in(&db);
    assert_eq!(keys.len(), 199, "every acknowledged commit is there");
    assert!(!keys.contains(&b"k0003".to_vec()));
    assert_eq!(
        db.get(T, b"k0004").expect("get").as_deref(),
        Some(&b"changed"[..])
    );
    // And the database goes on from there, across another crash.
    commit_keys(&db, 200, 10).await;
    disk.crash(Crash::Process);
    let db = Db::open_on(&disk, &no_fsync()).expect("reopen");
    assert_eq!(keys_in(&db).len(), 209);
}

#[tokio::test]
async fn unsynced_commits_survive_a_process_crash_with_fsync_on() {
    let disk = MemoryDisk::default();
    let db = Db::open_on(&disk, &DbConfig::default()).expect("open");
    db.transaction(|tx| tx.insert(T, b"durable", b"1"))
        .await
        .expect("commit");
    db.transaction_unsynced(|tx| tx.insert(T, b"unsynced", b"2"))
        .await
        .expect("commit");
    disk.crash(Crash::Process);
    let db = Db::open_on(&disk, &DbConfig::default()).expect("reopen");
    assert_eq!(
        keys_in(&db),
        vec![b"durable".to_vec(), b"unsynced".to_vec()]
    );
}

#[tokio::test]
async fn a_machine_crash_keeps_a_consistent_prefix_of_the_commits() {
    let disk = MemoryDisk::default();
    let db = Db::open_on(&disk, &DbConfig::default()).expect("open");
    commit_keys(&db, 0, 20).await;
    for i in 20..40u32 {
        db.transaction_unsynced(move |tx| {
            tx.insert(T, format!("k{i:04}").as_bytes(), &i.to_le_bytes())
        })
        .await
        .expect("commit");
    }
    disk.crash(Crash::Machine);
    let db = Db::open_on(&disk, &DbConfig::default()).expect("reopen");
    let keys = keys_in(&db);
    // Every synced commit, then maybe some of the others, in order.
    assert!(keys.len() >= 20, "{} keys", keys.len());
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(k, format!("k{i:04}").as_bytes());
    }
}

#[tokio::test]
async fn a_torn_or_damaged_log_tail_is_left_out() {
    let disk = MemoryDisk::default();
    let db = Db::open_on(&disk, &no_fsync()).expect("open");
    commit_keys(&db, 0, 10).await;
    let log = disk.contents("meta.wal");
    assert!(!log.is_empty(), "unsynced commits are in the log");
    disk.crash(Crash::Process);
    // A torn last record: cut in its middle.
    disk.set_contents("meta.wal", log[..log.len() - 3].to_vec());
    let db = Db::open_on(&disk, &no_fsync()).expect("reopen");
    let keys = keys_in(&db);
    assert!(keys.len() < 10, "the torn commit is left out");
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(k, format!("k{i:04}").as_bytes());
    }
    // A flipped byte in the first record: nothing of the log is applied.
    commit_keys(&db, 100, 5).await;
    let mut log = disk.contents("meta.wal");
    let before = keys_in(&db).len();
    disk.crash(Crash::Process);
    log[12] ^= 0xff;
    disk.set_contents("meta.wal", log);
    let db = Db::open_on(&disk, &no_fsync()).expect("reopen");
    assert_eq!(keys_in(&db).len(), before - 5);
}

/// What the engine alone keeps of commits without fsync when the process is
/// killed: nothing since the last durable commit. This is why the log exists.
#[test]
fn the_engine_alone_loses_unsynced_commits_in_a_process_crash() {
    let disk = MemoryDisk::default();
    let file = || crate::disk::EngineFile(disk.file("engine-only"));
    let def = redb::TableDefinition::<&[u8], &[u8]>::new("t");
    let db = redb::Database::builder()
        .create_with_backend(file())
        .expect("open");
    let mut wtx = db.begin_write().expect("begin");
    wtx.set_durability(redb::Durability::None)
        .expect("durability");
    wtx.open_table(def)
        .expect("table")
        .insert(b"k".as_slice(), b"v".as_slice())
        .expect("insert");
    wtx.commit().expect("commit");
    disk.crash(Crash::Process);
    std::mem::forget(db); // a killed process closes nothing
    let db = redb::Database::builder()
        .create_with_backend(file())
        .expect("reopen");
    let rtx = redb::ReadableDatabase::begin_read(&db).expect("read");
    let found = match rtx.open_table(def) {
        Ok(t) => t.get(b"k".as_slice()).expect("get").is_some(),
        Err(_) => false,
    };
    assert!(!found);
}

/// The child half of [`commits_survive_a_killed_process`]: commits keys
/// without fsync, says so, and waits to be killed.
#[test]
fn child_commits_then_waits_to_be_killed() {
    let Some(path) = std::env::var_os("HANGAR_DB_CHILD_PATH") else {
        return; // only run by the test below
    };
    let db = Db::open(std::path::Path::new(&path), &no_fsync()).expect("open");
    rt().block_on(commit_keys(&db, 0, 300));
    println!("COMMITTED");
    use std::io::Write as _;
    std::io::stdout().flush().expect("flush");
    std::thread::sleep(std::time::Duration::from_secs(60));
}

#[test]
fn commits_survive_a_killed_process() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("meta.redb");
    let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args([
            "--exact",
            "tests::child_commits_then_waits_to_be_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("HANGAR_DB_CHILD_PATH", &path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let committed = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("COMMITTED"));
    // SIGKILL, well within the second after which the writer would sync.
    child.kill().expect("kill");
    child.wait().expect("wait");
    assert!(committed, "the child did not commit");
    let db = Db::open(&path, &no_fsync()).expect("reopen");
    assert_eq!(keys_in(&db).len(), 300);
}
