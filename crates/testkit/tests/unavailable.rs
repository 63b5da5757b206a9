//! When too few replicas answer, S3 requests fail as the server's fault and as
//! temporary (503 ServiceUnavailable with Retry-After, which clients retry),
//! never as the client's (403 InvalidAccessKeyId for a key that exists, 404
//! for an object that exists, 400 for a body that was fine).

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use hangar_net::memory::LinkState;
use hangar_testkit::TestCluster;

/// The code, status and `Retry-After` of a failed SDK call.
fn failure<E: ProvideErrorMetadata>(
    e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> (String, u16, Option<String>) {
    let code = e
        .as_service_error()
        .and_then(|s| s.code())
        .unwrap_or("")
        .to_string();
    let raw = e.raw_response();
    let status = raw.map_or(0, |r| r.status().as_u16());
    let retry = raw.and_then(|r| r.headers().get("retry-after").map(str::to_string));
    (code, status, retry)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_few_replicas_is_503_with_retry_after_never_a_client_error() {
    let c = TestCluster::start(3, 3, hangar_testkit::small_model_config())
        .await
        .expect("cluster");
    let key = c.services[0].create_key("k").await.expect("key");
    let key = c.services[0]
        .update_key(&key.id, None, Some(true))
        .await
        .expect("allow bucket creation");
    let s3 = c.s3_client(0, &key.id, &key.secret).expect("client");
    s3.create_bucket()
        .bucket("avail")
        .send()
        .await
        .expect("bucket");
    s3.put_object()
        .bucket("avail")
        .key("k")
        .body(ByteStream::from(vec![7u8; 20_000]))
        .send()
        .await
        .expect("put");

    // Two of the three replicas go silent: no quorum for anything.
    c.cluster.set_state(1, LinkState::Down);
    c.cluster.set_state(2, LinkState::Down);

    let get = s3.get_object().bucket("avail").key("k").send().await;
    let (code, status, retry) = failure(&get.expect_err("no quorum"));
    assert_eq!((code.as_str(), status), ("ServiceUnavailable", 503));
    assert_eq!(retry.as_deref(), Some("1"));

    let put = s3
        .put_object()
        .bucket("avail")
        .key("k2")
        .body(ByteStream::from(vec![1u8; 20_000]))
        .send()
        .await;
    let (code, status, retry) = failure(&put.expect_err("no quorum"));
    assert_eq!((code.as_str(), status), ("ServiceUnavailable", 503));
    assert!(retry.is_some());

    // A client the node has not seen yet: its key is read from the replicas.
    let other = c.s3_client(0, &key.id, &key.secret).expect("client");
    let list = other.list_objects_v2().bucket("avail").send().await;
    let (code, status, _) = failure(&list.expect_err("no quorum"));
    assert_eq!((code.as_str(), status), ("ServiceUnavailable", 503));

    // Back to normal: the same requests succeed, at the first attempt: a
    // call that needs a peer it lost dials it at once, without waiting for
    // the next redial (which backs off up to 10 s after repeated failures).
    c.cluster.set_state(1, LinkState::Up);
    c.cluster.set_state(2, LinkState::Up);
    let bucket = c.services[0]
        .resolve_bucket("avail", None)
        .await
        .expect("bucket id at once after the heal");
    let object = hangar_testkit::read_object(&c.services[0], &bucket, "k")
        .await
        .expect("read at once after the heal");
    assert_eq!(object.map(|o| o.len()), Some(20_000));
    let got = s3
        .get_object()
        .bucket("avail")
        .key("k")
        .send()
        .await
        .expect("get once the replicas are back");
    let bytes = got.body.collect().await.expect("body").into_bytes();
    assert_eq!(bytes.len(), 20_000);
}
