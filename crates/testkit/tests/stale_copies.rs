//! Access keys and bucket names are read from the serving node's own copy
//! (they are needed on every request), which may miss a change made while
//! the node was cut off, or made a moment ago through a write quorum it was
//! not part of. Such a copy may only delay a refusal, never cause one: a
//! permission, a right to create buckets or a bucket created through the
//! other nodes works through this node at once, without waiting for
//! anti-entropy to bring its copy up to date.

use aws_sdk_s3::primitives::ByteStream;
use hangar_net::memory::LinkState;
use hangar_testkit::TestCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_copy_of_a_key_or_bucket_never_refuses_a_request() {
    let c = TestCluster::start(3, 3, hangar_testkit::small_model_config())
        .await
        .expect("cluster");
    let key = c.services[0].create_key("k").await.expect("key");

    // Node 2 is cut off while the key is allowed to create buckets, creates
    // one (which gives it every permission on it) and writes to it.
    c.cluster.set_state(2, LinkState::Down);
    c.services[0]
        .update_key(&key.id, None, Some(true))
        .await
        .expect("allow bucket creation");
    let s3 = c.s3_client(0, &key.id, &key.secret).expect("client");
    s3.create_bucket()
        .bucket("made-elsewhere")
        .send()
        .await
        .expect("bucket");
    s3.put_object()
        .bucket("made-elsewhere")
        .key("a")
        .body(ByteStream::from_static(b"written while node 2 was away"))
        .send()
        .await
        .expect("put");
    // Back: through node 2, at once, every request the key may make works.
    c.cluster.set_state(2, LinkState::Up);
    let s3 = c.s3_client(2, &key.id, &key.secret).expect("client");
    s3.head_bucket()
        .bucket("made-elsewhere")
        .send()
        .await
        .expect("head bucket through the node that missed its creation");
    s3.put_object()
        .bucket("made-elsewhere")
        .key("b")
        .body(ByteStream::from_static(b"through node 2"))
        .send()
        .await
        .expect("put through the node that missed the permission");
    let got = s3
        .get_object()
        .bucket("made-elsewhere")
        .key("a")
        .send()
        .await
        .expect("get through the node that missed the permission");
    let bytes = got.body.collect().await.expect("body").into_bytes();
    assert_eq!(&bytes[..], b"written while node 2 was away");
    s3.create_bucket()
        .bucket("made-here")
        .send()
        .await
        .expect("create through the node that missed the right to");
}
