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
//! is read to its end. Signing helpers here are independent of Hangar's and
//! s3s's code: where they disagree the request is refused, which is fine.
#![no_main]

#[allow(dead_code)]
mod common;

use base64::Engine;
use futures::StreamExt;
use hmac::{Hmac, KeyInit, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

const REGION: &str = "hangar";

fn endpoint(node: &common::Node) -> hangar_api_s3::S3Endpoint {
    hangar_api_s3::build_endpoint(
        node.service.clone(),
        hangar_api_s3::S3Settings {
            region: REGION.into(),
            pinned_region: None,
            root_domain: Some("s3.fuzz".into()),
        },
    )
    .expect("valid root domain")
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// SigV4's URI encoding (unreserved characters kept, `/` too if `path`).
fn uri_encode(s: &[u8], path: bool) -> String {
    let mut out = String::new();
    for &b in s {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (path && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode(s: &str) -> Vec<u8> {
    percent_encoding::percent_decode_str(s).collect()
}

/// The query's parameters, decoded, sorted as SigV4 lists them.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (uri_encode(&decode(k), false), uri_encode(&decode(v), false))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

struct Parsed {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

fn parse(text: &[u8]) -> Option<Parsed> {
    let mut headers = [httparse::EMPTY_HEADER; 48];
    let mut req = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(end) = req.parse(text).ok()? else {
        return None;
    };
    let target = req.path?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Some(Parsed {
        method: req.method?.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        headers: req
            .headers
            .iter()
            .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
            .collect(),
        body: text[end..].to_vec(),
    })
}

impl Parsed {
    fn get(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    fn set(&mut self, name: &str, value: &str) {
        self.headers.retain(|(n, _)| n != name);
        self.headers.push((name.into(), value.as_bytes().to_vec()));
    }

    fn sign_v4_header(&mut self, access: &str, secret: &str, now: time::OffsetDateTime) {
        let (date, stamp) = v4_times(now);
        self.set("x-amz-date", &stamp);
        if self.get("x-amz-content-sha256").is_none() {
            self.set("x-amz-content-sha256", "UNSIGNED-PAYLOAD");
        }
        self.headers.retain(|(n, _)| n != "authorization");
        let mut names: Vec<&(String, Vec<u8>)> = self
            .headers
            .iter()
            .filter(|(n, _)| n != "user-agent" && n != "expect")
            .collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        names.dedup_by(|a, b| a.0 == b.0);
        let canonical_headers: String = names
            .iter()
            .map(|(n, v)| {
                let v = String::from_utf8_lossy(v);
                let v = v.split_whitespace().collect::<Vec<_>>().join(" ");
                format!("{n}:{v}\n")
            })
            .collect();
        let signed = names
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(";");
        let payload = String::from_utf8_lossy(self.get("x-amz-content-sha256").unwrap_or_default())
            .into_owned();
        let canonical = format!(
            "{}\n{}\n{}\n{canonical_headers}\n{signed}\n{payload}",
            self.method,
            self.path,
            canonical_query(&self.query)
        );
        let signature = v4_signature(secret, &date, &stamp, &canonical);
        self.set(
            "authorization",
            &format!(
                "AWS4-HMAC-SHA256 Credential={access}/{date}/{REGION}/s3/aws4_request, SignedHeaders={signed}, Signature={signature}"
            ),
        );
    }

    fn sign_v4_query(&mut self, access: &str, secret: &str, now: time::OffsetDateTime) {
        let (date, stamp) = v4_times(now);
        let host = String::from_utf8_lossy(self.get("host").unwrap_or(b"s3.fuzz")).into_owned();
        let mut query: Vec<String> = self
            .query
            .split('&')
            .filter(|p| !p.is_empty() && !p.starts_with("X-Amz-"))
            .map(str::to_string)
            .collect();
        query.push("X-Amz-Algorithm=AWS4-HMAC-SHA256".into());
        query.push(format!(
            "X-Amz-Credential={}",
            uri_encode(
                format!("{access}/{date}/{REGION}/s3/aws4_request").as_bytes(),
                false
            )
        ));
        query.push(format!("X-Amz-Date={stamp}"));
        query.push("X-Amz-Expires=300".into());
        query.push("X-Amz-SignedHeaders=host".into());
        self.query = query.join("&");
        let canonical = format!(
            "{}\n{}\n{}\nhost:{host}\n\nhost\nUNSIGNED-PAYLOAD",
            self.method,
            self.path,
            canonical_query(&self.query)
        );
        let signature = v4_signature(secret, &date, &stamp, &canonical);
        self.query
            .push_str(&format!("&X-Amz-Signature={signature}"));
        self.headers.retain(|(n, _)| n != "authorization");
    }

    fn sign_v2_header(&mut self, access: &str, secret: &str, now: time::OffsetDateTime) {
        self.headers
            .retain(|(n, _)| n != "x-amz-date" && n != "authorization");
        let date = httpdate::fmt_http_date(std::time::SystemTime::from(now));
        self.set("date", &date);
        let line =
            |name: &str| String::from_utf8_lossy(self.get(name).unwrap_or_default()).into_owned();
        let mut amz: Vec<(String, String)> = self
            .headers
            .iter()
            .filter(|(n, _)| n.starts_with("x-amz-"))
            .map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).trim().to_string()))
            .collect();
        amz.sort();
        let amz: String = amz.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
        let mut sub: Vec<&str> = self
            .query
            .split('&')
            .filter(|p| {
                let name = p.split_once('=').map_or(*p, |(n, _)| n);
                SUB_RESOURCES.contains(&name)
            })
            .collect();
        sub.sort();
        let resource = if sub.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, sub.join("&"))
        };
        let to_sign = format!(
            "{}\n{}\n{}\n{date}\n{amz}{resource}",
            self.method,
            line("content-md5"),
            line("content-type")
        );
        let mut m = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("any key");
        m.update(to_sign.as_bytes());
        let signature = base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes());
        self.set("authorization", &format!("AWS {access}:{signature}"));
    }

    fn into_request(self) -> Option<http::Request<s3s::Body>> {
        let uri = if self.query.is_empty() {
            self.path
        } else {
            format!("{}?{}", self.path, self.query)
        };
        let mut b = http::Request::builder()
            .method(self.method.as_str())
            .uri(uri);
        for (n, v) in &self.headers {
            b = b.header(n.as_str(), v.as_slice());
        }
        b.body(s3s::Body::from(bytes::Bytes::from(self.body))).ok()
    }
}

/// Sub-resources a SigV2 canonical resource lists.
const SUB_RESOURCES: &[&str] = &[
    "acl",
    "cors",
    "delete",
    "lifecycle",
    "location",
    "partNumber",
    "policy",
    "tagging",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

fn v4_times(now: time::OffsetDateTime) -> (String, String) {
    let date = format!(
        "{:04}{:02}{:02}",
        now.year(),
        u8::from(now.month()),
        now.day()
    );
    let stamp = format!(
        "{date}T{:02}{:02}{:02}Z",
        now.hour(),
        now.minute(),
        now.second()
    );
    (date, stamp)
}

fn v4_signature(secret: &str, date: &str, stamp: &str, canonical: &str) -> String {
    let scope = format!("{date}/{REGION}/s3/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    for part in [REGION, "s3", "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    hex::encode(hmac_sha256(&key, to_sign.as_bytes()))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, text)) = data.split_first() else {
        return;
    };
    let Some(mut parsed) = parse(text) else {
        return;
    };
    if parsed.get("host").is_none() {
        parsed.set("host", "s3.fuzz");
    }
    if parsed.get("content-length").is_none() && parsed.get("transfer-encoding").is_none() {
        let len = parsed.body.len().to_string();
        parsed.set("content-length", &len);
    }
    common::with_node(|node| {
        let (access, secret) = (node.key.id.clone(), node.key.secret.clone());
        let now = time::OffsetDateTime::now_utc();
        match mode % 4 {
            1 => parsed.sign_v4_header(&access, &secret, now),
            2 => parsed.sign_v2_header(&access, &secret, now),
            3 => parsed.sign_v4_query(&access, &secret, now),
            _ => {}
        }
        let Some(req) = parsed.into_request() else {
            return;
        };
        let line = format!("{} {}", req.method(), req.uri());
        let endpoint = endpoint(node);
        node.rt.block_on(async {
            let resp = match endpoint.respond(req, "FUZZ").await {
                Ok(r) => r,
                // s3s's own refusal of a request it cannot read at all.
                Err(_) => return,
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
        });
    });
});
