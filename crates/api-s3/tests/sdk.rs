//! The S3 API driven by the AWS Rust SDK, in process (no sockets).

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use hangar_testkit::TestNode;

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 253) as u8).collect()
}

async fn get(node: &TestNode, bucket: &str, key: &str, range: Option<&str>) -> Vec<u8> {
    let mut req = node.s3.get_object().bucket(bucket).key(key);
    if let Some(r) = range {
        req = req.range(r);
    }
    let out = req.send().await.expect("get");
    out.body.collect().await.expect("body").to_vec()
}

fn code<E: aws_sdk_s3::error::ProvideErrorMetadata>(e: &E) -> String {
    e.code().unwrap_or("").to_string()
}

#[tokio::test]
async fn objects_round_trip_with_metadata_ranges_and_checksums() {
    let node = TestNode::start().await.expect("node");
    node.s3
        .create_bucket()
        .bucket("bucket-one")
        .send()
        .await
        .expect("create");
    let body = data(300_000);
    let put = node
        .s3
        .put_object()
        .bucket("bucket-one")
        .key("dir/obj")
        .content_type("text/plain")
        .cache_control("max-age=60")
        .metadata("color", "blue")
        .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Crc32C)
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .expect("put");
    assert!(put.checksum_crc32_c().is_some());
    assert_eq!(get(&node, "bucket-one", "dir/obj", None).await, body);
    assert_eq!(
        get(&node, "bucket-one", "dir/obj", Some("bytes=70000-140000")).await,
        body[70000..=140000]
    );
    assert_eq!(
        get(&node, "bucket-one", "dir/obj", Some("bytes=-10")).await,
        body[body.len() - 10..]
    );
    let head = node
        .s3
        .head_object()
        .bucket("bucket-one")
        .key("dir/obj")
        .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
        .send()
        .await
        .expect("head");
    assert_eq!(head.content_type(), Some("text/plain"));
    assert_eq!(head.cache_control(), Some("max-age=60"));
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("color"))
            .map(String::as_str),
        Some("blue")
    );
    assert_eq!(head.content_length(), Some(300_000));
    assert_eq!(head.checksum_crc32_c(), put.checksum_crc32_c());
    let etag = head.e_tag().expect("etag").to_string();
    let not_modified = node
        .s3
        .get_object()
        .bucket("bucket-one")
        .key("dir/obj")
        .if_none_match(&etag)
        .send()
        .await;
    assert!(not_modified.is_err());
    let bad_range = node
        .s3
        .get_object()
        .bucket("bucket-one")
        .key("dir/obj")
        .range("bytes=400000-400010")
        .send()
        .await;
    assert_eq!(
        code(&bad_range.expect_err("416").into_service_error()),
        "InvalidRange"
    );
}

#[tokio::test]
async fn listing_v2_paginates_and_groups() {
    let node = TestNode::start().await.expect("node");
    node.s3
        .create_bucket()
        .bucket("list")
        .send()
        .await
        .expect("create");
    for i in 0..25 {
        let key = if i % 5 == 0 {
            format!("sub/{i:02}")
        } else {
            format!("k{i:02}")
        };
        node.s3
            .put_object()
            .bucket("list")
            .key(key)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .expect("put");
    }
    let mut seen = Vec::new();
    let mut token = None;
    for _ in 0..10 {
        let out = node
            .s3
            .list_objects_v2()
            .bucket("list")
            .max_keys(7)
            .set_continuation_token(token.clone())
            .send()
            .await
            .expect("list");
        seen.extend(
            out.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
        token = out.next_continuation_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen.len(), 25);
    let grouped = node
        .s3
        .list_objects_v2()
        .bucket("list")
        .delimiter("/")
        .send()
        .await
        .expect("list");
    assert_eq!(grouped.common_prefixes().len(), 1);
    assert_eq!(grouped.contents().len(), 20);
}

#[tokio::test]
async fn multipart_copy_and_batch_delete() {
    let node = TestNode::start().await.expect("node");
    node.s3
        .create_bucket()
        .bucket("mpbucket")
        .send()
        .await
        .expect("create");
    let up = node
        .s3
        .create_multipart_upload()
        .bucket("mpbucket")
        .key("big")
        .send()
        .await
        .expect("create mpu");
    let id = up.upload_id().expect("id").to_string();
    let p1 = data(5 << 20);
    let p2 = data(1234);
    let mut parts = Vec::new();
    for (n, p) in [(1, &p1), (2, &p2)] {
        let r = node
            .s3
            .upload_part()
            .bucket("mpbucket")
            .key("big")
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(p.clone()))
            .send()
            .await
            .expect("part");
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(r.e_tag().expect("etag"))
                .build(),
        );
    }
    let listed = node
        .s3
        .list_parts()
        .bucket("mpbucket")
        .key("big")
        .upload_id(&id)
        .send()
        .await
        .expect("parts");
    assert_eq!(listed.parts().len(), 2);
    let done = node
        .s3
        .complete_multipart_upload()
        .bucket("mpbucket")
        .key("big")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .expect("complete");
    assert!(done.e_tag().expect("etag").ends_with("-2\""));
    let mut whole = p1.clone();
    whole.extend_from_slice(&p2);
    assert_eq!(get(&node, "mpbucket", "big", None).await, whole);
    let part2 = node
        .s3
        .get_object()
        .bucket("mpbucket")
        .key("big")
        .part_number(2)
        .send()
        .await
        .expect("part get");
    assert_eq!(part2.parts_count(), Some(2));
    assert_eq!(part2.body.collect().await.expect("body").to_vec(), p2);

    node.s3
        .copy_object()
        .bucket("mpbucket")
        .key("copy")
        .copy_source("mpbucket/big")
        .send()
        .await
        .expect("copy");
    assert_eq!(get(&node, "mpbucket", "copy", None).await, whole);

    let delete = Delete::builder()
        .objects(ObjectIdentifier::builder().key("big").build().expect("id"))
        .objects(ObjectIdentifier::builder().key("copy").build().expect("id"))
        .objects(
            ObjectIdentifier::builder()
                .key("never-existed")
                .build()
                .expect("id"),
        )
        .build()
        .expect("delete");
    let out = node
        .s3
        .delete_objects()
        .bucket("mpbucket")
        .delete(delete)
        .send()
        .await
        .expect("delete objects");
    assert_eq!(out.deleted().len(), 3);
    let gone = node
        .s3
        .get_object()
        .bucket("mpbucket")
        .key("big")
        .send()
        .await;
    assert_eq!(
        code(&gone.expect_err("gone").into_service_error()),
        "NoSuchKey"
    );
    node.s3
        .delete_bucket()
        .bucket("mpbucket")
        .send()
        .await
        .expect("empty bucket deletes");
}

#[tokio::test]
async fn errors_leave_data_unchanged() {
    let node = TestNode::start().await.expect("node");
    node.s3
        .create_bucket()
        .bucket("safe")
        .send()
        .await
        .expect("create");
    node.s3
        .put_object()
        .bucket("safe")
        .key("k")
        .body(ByteStream::from_static(b"original"))
        .send()
        .await
        .expect("put");

    let again = node.s3.create_bucket().bucket("safe").send().await;
    assert_eq!(
        code(&again.expect_err("exists").into_service_error()),
        "BucketAlreadyOwnedByYou"
    );
    let not_empty = node.s3.delete_bucket().bucket("safe").send().await;
    assert_eq!(
        code(&not_empty.expect_err("not empty").into_service_error()),
        "BucketNotEmpty"
    );
    let bad_name = node.s3.create_bucket().bucket("Bad_Name").send().await;
    assert!(bad_name.is_err());
    let long_key = node
        .s3
        .put_object()
        .bucket("safe")
        .key("x".repeat(1025))
        .body(ByteStream::from_static(b"z"))
        .send()
        .await;
    assert_eq!(
        code(&long_key.expect_err("too long").into_service_error()),
        "KeyTooLongError"
    );
    let bad_md5 = node
        .s3
        .put_object()
        .bucket("safe")
        .key("k")
        .content_md5("1B2M2Y8AsgTpgAmY7PhCfg==")
        .body(ByteStream::from_static(b"replacement"))
        .send()
        .await;
    assert_eq!(
        code(&bad_md5.expect_err("bad digest").into_service_error()),
        "BadDigest"
    );
    let wrong = node
        .client(&node.key.id, "not-the-secret-000000")
        .expect("client");
    let denied = wrong
        .put_object()
        .bucket("safe")
        .key("k")
        .body(ByteStream::from_static(b"evil"))
        .send()
        .await;
    assert_eq!(
        code(&denied.expect_err("denied").into_service_error()),
        "SignatureDoesNotMatch"
    );

    let other = node.model.create_key("other").await.expect("key");
    let stranger = node.client(&other.id, &other.secret).expect("client");
    let denied = stranger.get_object().bucket("safe").key("k").send().await;
    assert_eq!(
        code(&denied.expect_err("denied").into_service_error()),
        "AccessDenied"
    );
    let missing_upload = node
        .s3
        .upload_part()
        .bucket("safe")
        .key("k")
        .upload_id("00000000000000000000000000000000")
        .part_number(1)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert_eq!(
        code(&missing_upload.expect_err("no upload").into_service_error()),
        "NoSuchUpload"
    );
    let unsupported = node.s3.get_bucket_versioning().bucket("safe").send().await;
    assert_eq!(
        code(&unsupported.expect_err("501").into_service_error()),
        "NotImplemented"
    );

    assert_eq!(get(&node, "safe", "k", None).await, b"original");
    let listed = node
        .s3
        .list_objects_v2()
        .bucket("safe")
        .send()
        .await
        .expect("list");
    assert_eq!(listed.contents().len(), 1);
}

#[tokio::test]
async fn virtual_host_style_requests_reach_the_bucket() {
    let settings = hangar_api_s3::S3Settings {
        root_domain: Some("s3.example.test".into()),
        ..Default::default()
    };
    let node = TestNode::start_with(settings).await.expect("node");
    node.s3
        .create_bucket()
        .bucket("vhost-bucket")
        .send()
        .await
        .expect("create");
    node.s3
        .put_object()
        .bucket("vhost-bucket")
        .key("a/b.txt")
        .body(ByteStream::from_static(b"virtual"))
        .send()
        .await
        .expect("put");
    assert_eq!(
        get(&node, "vhost-bucket", "a/b.txt", None).await,
        b"virtual"
    );
    let listed = node
        .s3
        .list_objects_v2()
        .bucket("vhost-bucket")
        .send()
        .await
        .expect("list");
    assert_eq!(listed.contents().len(), 1);
}

#[tokio::test]
async fn a_pinned_region_refuses_signatures_for_other_regions() {
    // The test client signs for region "hangar".
    let pinned = |region: &str| hangar_api_s3::S3Settings {
        region: region.into(),
        pinned_region: Some(region.into()),
        ..Default::default()
    };
    let node = TestNode::start_with(pinned("hangar")).await.expect("node");
    node.s3
        .create_bucket()
        .bucket("pinned-ok")
        .send()
        .await
        .expect("the pinned region itself is accepted");

    let node = TestNode::start_with(pinned("eu-west-3"))
        .await
        .expect("node");
    let err = node
        .s3
        .create_bucket()
        .bucket("pinned-no")
        .send()
        .await
        .expect_err("another region is refused");
    assert_eq!(code(&err), "AuthorizationHeaderMalformed");
    let err = node
        .s3
        .list_buckets()
        .send()
        .await
        .expect_err("another region is refused");
    assert_eq!(code(&err), "AuthorizationHeaderMalformed");
}

#[tokio::test]
async fn an_object_whose_data_is_gone_is_an_error_not_an_empty_200() {
    let node = TestNode::start().await.expect("node");
    node.s3
        .create_bucket()
        .bucket("gone-data")
        .send()
        .await
        .expect("bucket");
    node.s3
        .put_object()
        .bucket("gone-data")
        .key("k")
        .body(data(200_000).into())
        .send()
        .await
        .expect("put");
    // Every block file gone, as after a disk lost with no other replica.
    let mut dirs = vec![node.blocks_dir()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("read dir") {
            let path = e.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                std::fs::remove_file(&path).expect("remove");
            }
        }
    }
    let err = node
        .s3
        .get_object()
        .bucket("gone-data")
        .key("k")
        .send()
        .await
        .expect_err("no data to serve");
    assert_eq!(code(&err), "ServiceUnavailable");
    let status = err.raw_response().map(|r| r.status().as_u16());
    assert_eq!(status, Some(503));
}
