//! A referenced block that no node has: lost if a live object uses it (an
//! ERROR an operator must act on), or left by an upload that failed (no
//! alarm: its release drops the references).

use bytes::Bytes;
use hangar_model::{BodyStream, MissingBlock, PutParams};
use hangar_testkit::TestCluster;
use hangar_util::Hash;

fn pattern(seed: usize, n: usize) -> Vec<u8> {
    (0..n).map(|i| ((i * 7 + seed * 13) % 251) as u8).collect()
}

/// `data` in chunks, then an error: an upload cut short.
fn failing_body(data: &[u8]) -> BodyStream {
    let mut chunks: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(1000)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    chunks.push(Err(std::io::Error::other("the client went away")));
    Box::pin(futures::stream::iter(chunks))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_on_no_node_is_told_lost_or_left_by_a_failed_upload() {
    let c = TestCluster::start(3, 3, hangar_testkit::small_model_config())
        .await
        .expect("cluster");
    let svc = &c.services[0];
    let bucket = svc.create_bucket("bucket", None).await.expect("bucket");
    // A live object of three 4 KiB blocks, and an upload that fails after
    // two blocks.
    let live = pattern(1, 10_000);
    svc.put_object(
        bucket,
        "live",
        PutParams::default(),
        hangar_testkit::body(&live),
    )
    .await
    .expect("put");
    let failed = pattern(2, 9_000);
    let err = svc
        .put_object(
            bucket,
            "failed",
            PutParams::default(),
            failing_body(&failed),
        )
        .await;
    assert!(err.is_err(), "the upload fails");

    let live_block = Hash::of(&live[..4096]);
    let failed_block = Hash::of(&failed[..4096]);
    assert_eq!(c.lose_block_everywhere(&live_block), 3);
    c.lose_block_everywhere(&failed_block);

    match svc.missing_block(live_block).await.expect("asked") {
        MissingBlock::Lost(owner) => {
            assert_eq!((owner.bucket_id, owner.key.as_str()), (bucket, "live"));
        }
        other => panic!("a block of a live object is lost, not {other:?}"),
    }
    assert_eq!(
        svc.missing_block(failed_block).await.expect("asked"),
        MissingBlock::LeftByFailedUpload
    );
    // Resync finds the lost block on no node and reports it.
    svc.blocks().restart_scrub().await.expect("scrub");
    let scrub = svc.blocks().scrub_some(1000).await.expect("scrub");
    assert!(scrub.damaged >= 1, "{scrub:?}");
    let r = svc.resync_some(1000, true).await.expect("resync");
    assert!(r.nowhere.contains(&live_block), "{r:?}");
}
