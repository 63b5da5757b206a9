//! Whole S3 requests through the S3 endpoint (`S3Endpoint::respond`), as the
//! HTTP server hands them over, to a node holding the bucket `fuzz`: SigV4 and
//! SigV2 authentication headers, the SigV2 path alignment, aws-chunked bodies
//! with trailers, every XML body Hangar takes, PostObject forms, conditions,
//! ranges, checksums and stored headers.
//!
//! Input: one byte choosing how the request is signed, then the request as
//! HTTP/1.1 text (request line, headers, blank line, body):
//! - `0`: as written (the input's own `Authorization`, if any);
//! - `1`: SigV4 in the header with the node's key (`x-amz-content-sha256`
//!   as written, else `UNSIGNED-PAYLOAD`: a `STREAMING-UNSIGNED-PAYLOAD-TRAILER`
//!   body is decoded as aws-chunked);
//! - `2`: SigV2 in the header with the node's key;
//! - `3`: SigV4 in the query (a presigned URL).
//!
//! `Host` defaults to `s3.fuzz` (path-style; `<bucket>.s3.fuzz` is
//! virtual-host style) and `Content-Length` to the body's length.
//!
//! Checks: no panic; no server error other than 501 and 503 (a 500 is a
//! server fault an input provoked); a response body, when complete in memory,
//! is read to its end (see `s3_signing` for the signatures).

use futures::StreamExt;

use super::s3_signing::parse;

/// The node's S3 endpoint, as the server builds it.
fn endpoint(node: &super::FuzzNode) -> hangar_api_s3::S3Endpoint {
    hangar_api_s3::build_endpoint(
        node.service.clone(),
        hangar_api_s3::S3Settings {
            region: super::s3_signing::REGION.into(),
            pinned_region: None,
            root_domain: Some("s3.fuzz".into()),
        },
    )
    .expect("valid root domain")
}

/// Sends the request `data` describes (see the module documentation) to the
/// node. Panics if the endpoint panics or answers a server error other than
/// 501 and 503.
pub fn s3_request(data: &[u8]) {
    let _ = s3_response(data);
}

/// Like [`s3_request`], returning the status and the start of the body of the
/// response, if the input was a request.
pub fn s3_response(data: &[u8]) -> Option<(u16, Vec<u8>)> {
    let (&mode, text) = data.split_first()?;
    let mut parsed = parse(text)?;
    if parsed.get("host").is_none() {
        parsed.set("host", "s3.fuzz");
    }
    if parsed.get("content-length").is_none() && parsed.get("transfer-encoding").is_none() {
        let len = parsed.body.len().to_string();
        parsed.set("content-length", &len);
    }
    super::with_node(|node| {
        let (access, secret) = (node.key.id.clone(), node.key.secret.clone());
        let now = time::OffsetDateTime::now_utc();
        match mode % 4 {
            1 => parsed.sign_v4_header(&access, &secret, now),
            2 => parsed.sign_v2_header(&access, &secret, now),
            3 => parsed.sign_v4_query(&access, &secret, now),
            _ => {}
        }
        let req = parsed.into_request()?;
        let line = format!("{} {}", req.method(), req.uri());
        let endpoint = endpoint(node);
        node.rt.block_on(async {
            let resp = match endpoint.respond(req, "FUZZ").await {
                Ok(r) => r,
                // s3s's own refusal of a request it cannot read at all.
                Err(_) => return None,
            };
            let status = resp.status().as_u16();
            let mut body = resp.into_body();
            let mut text = Vec::new();
            while let Some(chunk) = body.next().await {
                match chunk {
                    Ok(c) if text.len() < 1 << 20 => text.extend_from_slice(&c),
                    _ => break,
                }
            }
            if std::env::var_os("FUZZ_TRACE").is_some() {
                eprintln!(
                    "{status} {line}: {}",
                    String::from_utf8_lossy(&text[..text.len().min(300)])
                );
            }
            assert!(
                !(500..600).contains(&status) || status == 501 || status == 503,
                "server error {status}: {}",
                String::from_utf8_lossy(&text)
            );
            Some((status, text))
        })
    })
}
