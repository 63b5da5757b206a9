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
