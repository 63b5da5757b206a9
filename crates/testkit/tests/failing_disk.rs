//! A node whose disk fails (full, failing reads, torn writes) on a cluster of
//! three with three copies: uploads and reads through it go on, served by its
//! peers, and no damaged byte is ever served.

use hangar_block::disk::{DiskOp, Fault};
use hangar_model::PutParams;
use hangar_testkit::{body, read_object, TestCluster};

fn pattern(seed: usize, n: usize) -> Vec<u8> {
    (0..n).map(|i| ((i * 7 + seed * 13) % 251) as u8).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_disk_fails_still_serves_through_its_peers() {
    let c = TestCluster::start(3, 3, hangar_testkit::small_model_config())
        .await
        .expect("cluster");
    let node = &c.services[0];
    let disk = c.block_disk(0);
    let bucket = node.create_bucket("bucket", None).await.expect("bucket");
    // Several 4 KiB blocks each.
    let put = |key: &'static str, seed: usize| {
        let data = pattern(seed, 20_000);
        let svc = node.clone();
        async move {
            svc.put_object(bucket, key, PutParams::default(), body(&data))
                .await
                .map(|_| data)
        }
    };

    // A full disk: the upload still reaches a write quorum (the two
    // others), and reads through this node fetch from them.
    disk.fail_always(DiskOp::Write, Fault::NoSpace);
    let full = put("full", 1)
        .await
        .expect("a write quorum without this node");
    assert_eq!(
        read_object(node, &bucket, "full").await,
        Ok(Some(full.clone()))
    );
    assert!(disk.hits().contains(&(DiskOp::Write, Fault::NoSpace)));
    disk.clear();

    // A failing medium: reads of blocks this node holds fail with EIO; the
    // object is read from the peers.
    let held = put("held", 2).await.expect("put");
    disk.fail_always(DiskOp::Read, Fault::Eio);
    assert_eq!(read_object(node, &bucket, "held").await, Ok(Some(held)));
    assert!(disk.hits().contains(&(DiskOp::Read, Fault::Eio)));
    disk.clear();

    // Torn writes: the disk acknowledged half a block. Reading finds it
    // damaged (hash check), sets it aside and serves the peers' copy.
    disk.fail_always(DiskOp::Write, Fault::Torn);
    let torn = put("torn", 3).await.expect("the disk said yes");
    assert!(disk.hits().contains(&(DiskOp::Write, Fault::Torn)));
    disk.clear();
    assert_eq!(
        read_object(node, &bucket, "torn").await,
        Ok(Some(torn.clone()))
    );
    // Read again (the damaged copies were set aside; good ones from the
    // peers replace them in the background): still the right bytes.
    assert_eq!(read_object(node, &bucket, "torn").await, Ok(Some(torn)));

    // Every object reads back whole through every node.
    for (i, svc) in c.services.iter().enumerate() {
        for (key, seed) in [("full", 1), ("held", 2), ("torn", 3)] {
            assert_eq!(
                read_object(svc, &bucket, key).await,
                Ok(Some(pattern(seed, 20_000))),
                "{key} through node {i}"
            );
        }
    }
}
