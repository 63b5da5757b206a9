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
