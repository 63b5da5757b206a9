use std::sync::Arc;

use bytes::Bytes;
use hangar_cluster::testing::MemoryCluster;
use hangar_util::clock::{Clock, ManualWallClock};
use hangar_util::Uuid;

use super::*;
use crate::schema::object::ObjectData;
use crate::{Error, ListParams, Precondition};

struct Fixture {
    _dir: tempfile::TempDir,
    _cluster: MemoryCluster,
    db: hangar_db::Db,
    blocks: hangar_block::BlockStore,
    clock: Clock,
    svc: ObjectService,
    wall: Arc<ManualWallClock>,
    bucket: Uuid,
}

async fn fixture() -> Fixture {
    fixture_with_body_timeout(std::time::Duration::from_secs(30)).await
}

async fn fixture_with_body_timeout(body_idle_timeout: std::time::Duration) -> Fixture {
    fixture_with(4096, body_idle_timeout).await
}

fn model_config(block_size: usize, body_idle_timeout: std::time::Duration) -> ModelConfig {
    ModelConfig {
        block_size,
        inline_threshold: 100,
        upload_buffer_bytes: 1 << 20,
        release_delay_msec: 0,
        release_retry_msec: 0,
        body_idle_timeout,
        tombstone_delay_msec: 0,
        orphan_grace_msec: 60_000,
    }
}

async fn fixture_with(block_size: usize, body_idle_timeout: std::time::Duration) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let wall = Arc::new(ManualWallClock::new(1_000_000));
    let clock = Clock::new(wall.clone());
    let cluster = MemoryCluster::start(1, 1, std::time::Duration::ZERO).await;
    let replicator = hangar_table::Replicator::new(cluster.systems[0].clone());
    let config = model_config(block_size, body_idle_timeout);
    let db = hangar_db::Db::open_in_memory().expect("db");
    let blocks = hangar_block::BlockStore::new(
        hangar_block::BlockStoreConfig {
            data_dirs: vec![hangar_block::DataDir {
                path: dir.path().into(),
                capacity: 1,
            }],
            compression_level: None,
            fsync: false,
            gc_delay_msec: 1000,
        },
        db.clone(),
        clock.clone(),
    )
    .expect("blocks");
    let svc = ObjectService::new(
        config,
        db.clone(),
        blocks.clone(),
        &replicator,
        clock.clone(),
    );
    let bucket = svc.create_bucket("bucket1", None).await.expect("bucket");
    Fixture {
        _dir: dir,
        _cluster: cluster,
        db,
        blocks,
        clock,
        svc,
        wall,
        bucket,
    }
}

fn body(data: Vec<u8>) -> BodyStream {
    let chunks: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(1000)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures::stream::iter(chunks))
}

async fn read_all(
    svc: &ObjectService,
    bucket: &Uuid,
    key: &str,
    range: Option<GetRange>,
) -> Vec<u8> {
    use futures::StreamExt;
    let (_, data) = svc.get_object(bucket, key).await.expect("get");
    let size = data.meta().expect("meta").size;
    let mut s = svc.read_data(&data, range.unwrap_or(0..size));
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.expect("chunk"));
    }
    out
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

#[tokio::test]
async fn objects_round_trip_inline_and_in_blocks_with_ranges() {
    let f = fixture().await;
    for (key, n) in [("small", 50), ("big", 20_000)] {
        let data = pattern(n);
        let r = f
            .svc
            .put_object(f.bucket, key, PutParams::default(), body(data.clone()))
            .await
            .expect("put");
        assert_eq!(r.size, n as u64);
        assert_eq!(read_all(&f.svc, &f.bucket, key, None).await, data);
        assert_eq!(
            read_all(&f.svc, &f.bucket, key, Some(10..(n as u64 - 3))).await,
            data[10..n - 3]
        );
    }
    assert_eq!(f.svc.blocks().count_files(), 5);
}

/// `n` bytes in which no two 4 KiB blocks are alike.
fn distinct(n: usize) -> Vec<u8> {
    (0..n as u64)
        .map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8 ^ (i >> 12) as u8)
        .collect()
}

/// Ranges that start and end at and around block and batch boundaries, and
/// in the last, short block, of an object of `size` bytes in 4 KiB blocks.
fn ranges_across_blocks(size: u64) -> Vec<GetRange> {
    let b = 4096;
    vec![
        0..1,
        0..b,
        b - 1..b + 1,
        100 * b - 1..100 * b + 1,
        63 * b..65 * b + 7,
        64 * b..128 * b,
        130 * b + 5..190 * b,
        150 * b + 7..150 * b + 8,
        200 * b..size,
        size - 1..size,
        3..size - 3,
    ]
}

#[tokio::test]
async fn ranged_reads_seek_to_the_block_that_holds_their_start() {
    let f = fixture().await;
    let size = 200 * 4096 + 123;
    let data = distinct(size);
    f.svc
        .put_object(f.bucket, "big", PutParams::default(), body(data.clone()))
        .await
        .expect("put");
    for range in ranges_across_blocks(size as u64) {
        let got = read_all(&f.svc, &f.bucket, "big", Some(range.clone())).await;
        assert!(
            got == data[range.start as usize..range.end as usize],
            "bytes {range:?}"
        );
    }
    // The seek finds the block in one read, without the rows before it.
    let (_, object) = f.svc.get_object(&f.bucket, "big").await.expect("get");
    let ObjectData::Parts { parts, .. } = object else {
        panic!("in blocks")
    };
    let pk = crate::schema::block_row::data_partition(&parts[0].data_id);
    let rows = f
        .svc
        .first_block_rows(&pk, 150 * 4096 + 7)
        .await
        .expect("rows");
    assert_eq!(rows[0].offset, 150 * 4096);
    assert_eq!(rows.len(), 50 + 1, "the rows from there to the end");
}

#[tokio::test]
async fn ranged_reads_are_right_after_the_block_size_changed() {
    // Written in 16 KiB blocks, read by a node configured for 4 KiB ones:
    // the guessed block is inside a bigger one, and the read starts over from
    // the part's first block.
    let f = fixture_with(16384, std::time::Duration::from_secs(30)).await;
    let size = 50 * 16384 + 123;
    let data = distinct(size);
    f.svc
        .put_object(f.bucket, "big", PutParams::default(), body(data.clone()))
        .await
        .expect("put");
    let cluster = MemoryCluster::start(1, 1, std::time::Duration::ZERO).await;
    let replicator = hangar_table::Replicator::new(cluster.systems[0].clone());
    let smaller = ObjectService::new(
        model_config(4096, std::time::Duration::from_secs(30)),
        f.db.clone(),
        f.blocks.clone(),
        &replicator,
        f.clock.clone(),
    );
    for range in ranges_across_blocks(size as u64) {
        let got = read_all(&smaller, &f.bucket, "big", Some(range.clone())).await;
        assert!(
            got == data[range.start as usize..range.end as usize],
            "bytes {range:?}"
        );
    }
}

#[tokio::test]
async fn bad_content_md5_stores_nothing() {
    let f = fixture().await;
    let params = PutParams {
        content_md5: Some([0; 16]),
        ..Default::default()
    };
    let r = f
        .svc
        .put_object(f.bucket, "k", params, body(pattern(10_000)))
        .await;
    assert!(matches!(r, Err(Error::BadDigest)));
    assert!(matches!(
        f.svc.get_object(&f.bucket, "k").await,
        Err(Error::NoSuchKey)
    ));
    f.svc.release_some(1000).await.expect("release");
    f.wall.advance(2000);
    f.svc.blocks().collect_garbage(1000).await.expect("gc");
    assert_eq!(f.svc.blocks().count_files(), 0);
}

#[tokio::test]
async fn overwriting_and_deleting_releases_blocks_after_the_grace_delay() {
    let f = fixture().await;
    f.svc
        .put_object(f.bucket, "k", PutParams::default(), body(pattern(10_000)))
        .await
        .expect("put");
    f.svc
        .put_object(f.bucket, "k", PutParams::default(), body(vec![1; 9000]))
        .await
        .expect("put");
    f.svc.delete_object(f.bucket, "k").await.expect("delete");
    assert!(matches!(
        f.svc.get_object(&f.bucket, "k").await,
        Err(Error::NoSuchKey)
    ));
    assert!(f.svc.release_some(1000).await.expect("release") >= 6);
    assert!(f.svc.blocks().count_files() > 0);
    f.wall.advance(2000);
    f.svc.blocks().collect_garbage(1000).await.expect("gc");
    assert_eq!(f.svc.blocks().count_files(), 0);
    assert!(f.svc.is_bucket_empty(&f.bucket).await.expect("empty"));
}

#[tokio::test]
async fn listing_groups_by_delimiter_and_paginates() {
    let f = fixture().await;
    for k in ["a/1", "a/2", "b", "c/x/y", "d"] {
        f.svc
            .put_object(f.bucket, k, PutParams::default(), body(vec![1]))
            .await
            .expect("put");
    }
    let p = ListParams {
        delimiter: Some("/".into()),
        max_keys: 2,
        ..Default::default()
    };
    let r = f.svc.list_objects(&f.bucket, &p).await.expect("list");
    assert_eq!(r.common_prefixes, ["a/"]);
    assert_eq!(
        r.objects.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(),
        ["b"]
    );
    assert!(r.is_truncated);
    let p = ListParams {
        start_after: r.last,
        ..p
    };
    let r = f.svc.list_objects(&f.bucket, &p).await.expect("list");
    assert_eq!(r.common_prefixes, ["c/"]);
    assert_eq!(
        r.objects.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(),
        ["d"]
    );
    assert!(!r.is_truncated);
}

#[tokio::test]
async fn listing_pages_cross_long_runs_of_deleted_keys() {
    let f = fixture().await;
    // Visible keys k000, k050, k100, ..., with deleted keys between them: more
    // hidden entries in a row than one read batch holds.
    let mut visible = Vec::new();
    for i in 0..260 {
        let k = format!("k{i:03}");
        f.svc
            .put_object(f.bucket, &k, PutParams::default(), body(vec![1]))
            .await
            .expect("put");
        if i % 50 == 0 {
            visible.push(k);
        } else {
            f.svc.delete_object(f.bucket, &k).await.expect("delete");
        }
    }
    for max_keys in [1, 2, 4, 1000] {
        let mut listed = Vec::new();
        let mut p = ListParams {
            max_keys,
            ..Default::default()
        };
        for _ in 0..20 {
            let r = f.svc.list_objects(&f.bucket, &p).await.expect("list");
            assert!(r.objects.len() <= max_keys);
            listed.extend(r.objects.iter().map(|o| o.key.clone()));
            if !r.is_truncated {
                break;
            }
            p.start_after = r.last;
        }
        assert_eq!(listed, visible, "max_keys {max_keys}");
    }
}

#[tokio::test]
async fn multipart_uploads_complete_with_multipart_etags_and_copies_share_blocks() {
    let f = fixture().await;
    let up = f
        .svc
        .create_multipart_upload(f.bucket, "mp", vec![])
        .await
        .expect("create");
    let p1 = pattern(5 << 20);
    let p2 = vec![9u8; 1000];
    let e1 = f
        .svc
        .upload_part(
            f.bucket,
            "mp",
            up,
            1,
            PutParams::default(),
            body(p1.clone()),
        )
        .await
        .expect("p1");
    let e2 = f
        .svc
        .upload_part(
            f.bucket,
            "mp",
            up,
            2,
            PutParams::default(),
            body(p2.clone()),
        )
        .await
        .expect("p2");
    let too_small = f
        .svc
        .complete_multipart_upload(
            f.bucket,
            "mp",
            up,
            &[
                CompletedPart {
                    part_number: 2,
                    etag: e2.etag.clone(),
                },
                CompletedPart {
                    part_number: 1,
                    etag: e1.etag.clone(),
                },
            ],
        )
        .await;
    assert!(matches!(too_small, Err(Error::InvalidPartOrder)));
    let r = f
        .svc
        .complete_multipart_upload(
            f.bucket,
            "mp",
            up,
            &[
                CompletedPart {
                    part_number: 1,
                    etag: e1.etag,
                },
                CompletedPart {
                    part_number: 2,
                    etag: format!("\"{}\"", e2.etag),
                },
            ],
        )
        .await
        .expect("complete");
    assert!(r.etag.ends_with("-2"));
    let mut all = p1.clone();
    all.extend_from_slice(&p2);
    assert_eq!(read_all(&f.svc, &f.bucket, "mp", None).await, all);
    let files = f.svc.blocks().count_files();
    let (_, data) = f.svc.get_object(&f.bucket, "mp").await.expect("get");
    f.svc
        .copy_object(&data, f.bucket, "copy", None)
        .await
        .expect("copy");
    assert_eq!(f.svc.blocks().count_files(), files);
    assert_eq!(read_all(&f.svc, &f.bucket, "copy", None).await, all);
    assert!(matches!(
        f.svc
            .upload_part(f.bucket, "mp", up, 3, PutParams::default(), body(vec![1]))
            .await,
        Err(Error::NoSuchUpload)
    ));
}

#[tokio::test]
async fn uploads_interrupted_by_a_crash_are_released_at_start() {
    let f = fixture().await;
    let id = Uuid::random();
    f.svc
        .inner
        .db
        .transaction(move |tx| tx.insert(crate::release::IN_FLIGHT, id.as_bytes(), b""))
        .await
        .expect("tx");
    assert_eq!(
        f.svc.recover_interrupted_uploads().await.expect("recover"),
        1
    );
    assert_eq!(f.svc.release_queue_len().expect("len"), 1);
    f.svc.release_some(100).await.expect("release");
    assert_eq!(f.svc.release_queue_len().expect("len"), 0);
}

#[tokio::test]
async fn a_multipart_upload_survives_a_put_to_the_same_key() {
    let f = fixture().await;
    let up = f
        .svc
        .create_multipart_upload(f.bucket, "k", vec![])
        .await
        .expect("create");
    f.svc
        .put_object(f.bucket, "k", PutParams::default(), body(vec![1; 10]))
        .await
        .expect("put");
    let p = f
        .svc
        .upload_part(
            f.bucket,
            "k",
            up,
            1,
            PutParams::default(),
            body(vec![2; 10]),
        )
        .await
        .expect("part");
    f.svc
        .complete_multipart_upload(
            f.bucket,
            "k",
            up,
            &[CompletedPart {
                part_number: 1,
                etag: p.etag,
            }],
        )
        .await
        .expect("complete");
    // The completion is newer than the PUT, as in S3.
    assert_eq!(read_all(&f.svc, &f.bucket, "k", None).await, vec![2; 10]);
}

#[tokio::test]
async fn if_none_match_star_lets_only_the_first_writer_win() {
    let f = fixture().await;
    let params = PutParams {
        precondition: Some(Precondition::Absent),
        ..Default::default()
    };
    f.svc
        .put_object(f.bucket, "lock", params.clone(), body(vec![1; 9000]))
        .await
        .expect("first");
    let second = f
        .svc
        .put_object(f.bucket, "lock", params, body(vec![2; 9000]))
        .await;
    assert!(matches!(second, Err(Error::PreconditionFailed)));
    assert_eq!(
        read_all(&f.svc, &f.bucket, "lock", None).await,
        vec![1; 9000]
    );
    // The loser's blocks are released, not leaked.
    assert_eq!(f.svc.release_queue_len().expect("len"), 1);
}

#[tokio::test]
async fn writes_into_a_deleted_bucket_fail_at_commit() {
    let f = fixture().await;
    let other = f.svc.create_bucket("bucket2", None).await.expect("bucket");
    f.svc.delete_bucket(&other).await.expect("delete bucket");
    // A PUT that resolved the bucket before it was deleted reaches its commit now.
    let err = f
        .svc
        .put_object(other, "late", PutParams::default(), body(vec![1; 10]))
        .await
        .expect_err("put into a deleted bucket");
    assert!(matches!(err, Error::NoSuchBucket { .. }), "{err:?}");
    let err = f
        .svc
        .put_object(
            other,
            "late-big",
            PutParams::default(),
            body(pattern(3 << 20)),
        )
        .await
        .expect_err("put into a deleted bucket");
    assert!(matches!(err, Error::NoSuchBucket { .. }), "{err:?}");
    let err = f
        .svc
        .create_multipart_upload(other, "late-mpu", Vec::new())
        .await
        .expect_err("multipart upload in a deleted bucket");
    assert!(matches!(err, Error::NoSuchBucket { .. }), "{err:?}");
    assert!(f.svc.is_bucket_empty(&other).await.expect("empty check"));
}

#[tokio::test]
async fn an_upload_dropped_mid_body_releases_its_blocks() {
    use futures::StreamExt;
    let f = fixture().await;
    // 10 blocks of data, then a body that never ends: like a client that
    // stalls, and whose request the server drops when the connection closes.
    let first: Vec<Result<Bytes, std::io::Error>> = pattern(40_000)
        .chunks(1000)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let stalled: BodyStream =
        Box::pin(futures::stream::iter(first).chain(futures::stream::pending()));
    let svc = f.svc.clone();
    let bucket = f.bucket;
    let upload = tokio::spawn(async move {
        svc.put_object(bucket, "abandoned", PutParams::default(), stalled)
            .await
    });
    // Bounded wait until blocks are on disk.
    for _ in 0..200 {
        if f.svc.blocks().count_files() >= 5 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(f.svc.blocks().count_files() >= 5, "blocks were stored");
    upload.abort();
    assert!(upload.await.expect_err("aborted").is_cancelled());
    // The release runs in the background once the block tasks ended.
    let mut released = 0;
    for _ in 0..200 {
        released += f.svc.release_some(1000).await.expect("release");
        if released >= 10 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(released >= 5, "rows released: {released}");
    f.wall.advance(2000);
    f.svc.blocks().collect_garbage(1000).await.expect("gc");
    assert_eq!(f.svc.blocks().count_files(), 0);
    assert!(matches!(
        f.svc.get_object(&f.bucket, "abandoned").await,
        Err(Error::NoSuchKey)
    ));
}

#[tokio::test]
async fn a_body_that_stalls_times_out_and_stores_nothing() {
    use futures::StreamExt;
    let f = fixture_with_body_timeout(std::time::Duration::from_millis(300)).await;
    let first: Vec<Result<Bytes, std::io::Error>> = pattern(20_000)
        .chunks(1000)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let stalled: BodyStream =
        Box::pin(futures::stream::iter(first).chain(futures::stream::pending()));
    let err = f
        .svc
        .put_object(f.bucket, "stalled", PutParams::default(), stalled)
        .await
        .expect_err("stalled body");
    assert!(matches!(err, Error::BodyTimeout { .. }), "{err:?}");
    assert!(f.svc.release_some(1000).await.expect("release") >= 4);
    f.wall.advance(2000);
    f.svc.blocks().collect_garbage(1000).await.expect("gc");
    assert_eq!(f.svc.blocks().count_files(), 0);
    assert!(matches!(
        f.svc.get_object(&f.bucket, "stalled").await,
        Err(Error::NoSuchKey)
    ));
}

#[tokio::test]
async fn repair_versions_releases_only_data_no_version_uses() {
    let f = fixture().await;
    let svc = &f.svc;
    let put = |key: &'static str, n: usize| {
        svc.put_object(f.bucket, key, PutParams::default(), body(pattern(n)))
    };
    // In use: an object, its copy, a completed multipart upload, a part of an
    // upload in progress.
    put("plain", 10_000).await.expect("put");
    let (_, data) = svc.get_object(&f.bucket, "plain").await.expect("get");
    svc.copy_object(&data, f.bucket, "copy", None)
        .await
        .expect("copy");
    let done = svc
        .create_multipart_upload(f.bucket, "done", vec![])
        .await
        .expect("create");
    let part = svc
        .upload_part(
            f.bucket,
            "done",
            done,
            1,
            PutParams::default(),
            body(pattern(5000)),
        )
        .await
        .expect("part");
    svc.complete_multipart_upload(
        f.bucket,
        "done",
        done,
        &[CompletedPart {
            part_number: 1,
            etag: part.etag,
        }],
    )
    .await
    .expect("complete");
    let open = svc
        .create_multipart_upload(f.bucket, "open", vec![])
        .await
        .expect("create");
    svc.upload_part(
        f.bucket,
        "open",
        open,
        1,
        PutParams::default(),
        body(pattern(5000)),
    )
    .await
    .expect("part");

    // Not in use: data stored for a version whose commit reached no replica
    // (its coordinator then forgot it, as after its death).
    let ghost = Uuid::random();
    let owner = svc.data_owner(f.bucket, "ghost", (ghost, 1), None);
    // Bytes of their own: three blocks no other data shares.
    let bytes = (0..9000).map(|i| (i % 13) as u8).collect();
    let mut written = svc
        .write_body(ghost, owner, body(bytes), None, false)
        .await
        .expect("write");
    written.in_flight.take().expect("in flight").disarm();
    svc.settle_in_flight(ghost).await.expect("settle");
    let files = svc.blocks().count_files();

    // Within the grace delay, nothing is touched.
    let early = svc.repair_versions().await.expect("repair");
    assert_eq!((early.checked, early.recent, early.released), (5, 5, 0));

    f.wall.advance(61_000);
    let report = svc.repair_versions().await.expect("repair");
    assert_eq!(
        report,
        crate::VersionsRepairReport {
            checked: 5,
            released: 1,
            ..Default::default()
        }
    );
    svc.release_some(1000).await.expect("release");
    f.wall.advance(2000);
    svc.blocks().collect_garbage(1000).await.expect("gc");
    assert_eq!(svc.blocks().count_files(), files - 3);

    // What is in use is intact, and a second pass finds nothing more.
    assert_eq!(
        read_all(svc, &f.bucket, "plain", None).await,
        pattern(10_000)
    );
    assert_eq!(
        read_all(svc, &f.bucket, "copy", None).await,
        pattern(10_000)
    );
    assert_eq!(read_all(svc, &f.bucket, "done", None).await, pattern(5000));
    let again = svc.repair_versions().await.expect("repair");
    assert_eq!((again.checked, again.released), (4, 0));
}

#[tokio::test]
async fn deleting_a_bucket_aborts_its_multipart_uploads_but_objects_keep_it() {
    let f = fixture().await;
    let other = f.svc.create_bucket("bucket2", None).await.expect("bucket");
    let up = f
        .svc
        .create_multipart_upload(other, "mp", vec![])
        .await
        .expect("create");
    f.svc
        .upload_part(
            other,
            "mp",
            up,
            1,
            PutParams::default(),
            body(pattern(9000)),
        )
        .await
        .expect("part");
    f.svc
        .put_object(other, "obj", PutParams::default(), body(vec![1; 10]))
        .await
        .expect("put");
    let err = f
        .svc
        .delete_bucket(&other)
        .await
        .expect_err("an object keeps it");
    assert!(matches!(err, Error::BucketNotEmpty), "{err:?}");
    // The refused deletion changed nothing: the upload still takes parts.
    f.svc
        .upload_part(other, "mp", up, 2, PutParams::default(), body(vec![2; 10]))
        .await
        .expect("part after a refused deletion");
    f.svc.delete_object(other, "obj").await.expect("delete");
    f.svc
        .delete_bucket(&other)
        .await
        .expect("only an upload is left");
    assert!(f.svc.get_bucket(&other).await.expect("get").is_none());
    assert!(f.svc.is_bucket_empty(&other).await.expect("empty check"));
    // The upload's parts are released like those of any abort.
    assert_eq!(f.svc.release_ended_uploads().await.expect("ended"), 1);
    assert!(f.svc.release_some(1000).await.expect("release") >= 1);
    f.wall.advance(2000);
    f.svc.blocks().collect_garbage(1000).await.expect("gc");
    assert_eq!(f.svc.blocks().count_files(), 0);
}

#[tokio::test]
async fn a_deleted_key_comes_back_only_with_its_former_secret() {
    let f = fixture().await;
    let old = "0123456789abcdef0123";
    f.svc.import_key("HKBACK", old, "k").await.expect("import");
    f.svc.delete_key("HKBACK").await.expect("delete");
    let err = f
        .svc
        .import_key("HKBACK", "another-secret-0123456", "k")
        .await
        .expect_err("another secret for a deleted id");
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    let back = f
        .svc
        .import_key("HKBACK", old, "k")
        .await
        .expect("reimport");
    assert_eq!(back.secret, old);
    assert_eq!(f.svc.get_key("HKBACK").await.expect("get").secret, old);
}
