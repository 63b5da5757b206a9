//! Requests the fuzz targets (`fuzz/`) found to break the endpoint, replayed
//! as the HTTP server hands them over (`S3Endpoint::respond`). Each must get
//! an S3 error, not a panic (which would drop the connection).

use hangar_testkit::TestNode;

async fn respond(node: &TestNode, req: http::Request<s3s::Body>) -> http::Response<s3s::Body> {
    let endpoint =
        hangar_api_s3::build_endpoint(node.model.clone(), hangar_api_s3::S3Settings::default())
            .expect("endpoint");
    endpoint
        .respond(req, "REGRESSION")
        .await
        .expect("an HTTP response")
}

/// `fuzz/regressions/s3_request/amz_date_below_zero`: s3s 0.14 parses the
/// digits of `x-amz-date` with `c - b'0'` before checking that `c` is a digit,
/// which overflows (a panic where overflow checks are on) for a character
/// below `0`. Overflow checks are off for s3s in every profile (`Cargo.toml`),
/// as in release builds: the subtraction wraps, its result is discarded and
/// the date is refused. Fixed in s3s 0.17.
#[tokio::test]
async fn an_amz_date_with_a_character_below_zero_is_refused_not_a_panic() {
    let node = TestNode::start().await.expect("node");
    for date in ["20\"61207T000000Z", "2026120 T000000Z", "20261207T00/000Z"] {
        let header = http::Request::get("/fuzz/a.txt")
            .header("host", "localhost")
            .header("x-amz-date", date)
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AK/20261207/hangar/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
            )
            .body(s3s::Body::empty())
            .expect("request");
        let resp = respond(&node, header).await;
        assert_eq!(resp.status(), 400, "x-amz-date {date:?}");
        let query = format!(
            "/fuzz/a.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20261207%2Fhangar%2Fs3%2Faws4_request&X-Amz-Date={}&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=00",
            date.replace('"', "%22").replace(' ', "%20").replace('/', "%2F")
        );
        let presigned = http::Request::get(query)
            .header("host", "localhost")
            .body(s3s::Body::empty())
            .expect("request");
        let resp = respond(&node, presigned).await;
        assert!(
            resp.status().is_client_error(),
            "presigned X-Amz-Date {date:?}: {}",
            resp.status()
        );
    }
}

/// `fuzz/regressions/s3_request/aws_chunked_xml_body`: CreateBucket (whose
/// XML body s3s reads whole itself) with an aws-chunked body that is
/// malformed after its last chunk. s3s answers every failure to read such a
/// body with a bare 500 InternalError; it is the client's: 400.
#[test]
fn a_malformed_aws_chunked_body_of_a_bucket_request_is_a_client_error() {
    let input = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fuzz/regressions/s3_request/aws_chunked_xml_body"
    ))
    .expect("the reproducer");
    let (status, body) = hangar_testkit::fuzzing::s3_response(&input).expect("a request");
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("<Code>IncompleteBody</Code>"), "{body}");
    // The same body, well formed, creates the bucket: the refusal is about
    // the encoding, not about the request.
    let text = String::from_utf8_lossy(&input[1..]);
    let (head, _) = text.split_once("\r\n\r\n").expect("a body");
    let good = format!("\x01{head}\r\n\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n").replace(
        "x-amz-decoded-content-length: 11",
        "x-amz-decoded-content-length: 0",
    );
    let (status, body) = hangar_testkit::fuzzing::s3_response(good.as_bytes()).expect("a request");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
}
