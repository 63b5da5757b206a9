//! Signing of the requests the `s3_request` harness sends, with SigV4 (header
//! or query) and SigV2, written independently of Hangar's and s3s's code:
//! where they disagree the request is refused, which is fine.

use base64::Engine;

/// The region requests are signed for.
pub(super) const REGION: &str = "hangar";

/// HMAC-SHA256 of `data` under `key`.
fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    ring::hmac::sign(&key, data).as_ref().to_vec()
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

/// `s` percent-decoded.
fn decode(s: &str) -> Vec<u8> {
    urlencoding::decode_binary(s.as_bytes()).into_owned()
}

/// The query's parameters, decoded, sorted as SigV4 lists them.
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

/// A request as the input wrote it.
pub(super) struct Parsed {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, Vec<u8>)>,
    pub(super) body: Vec<u8>,
}

/// The request `text` holds, if it is one.
pub(super) fn parse(text: &[u8]) -> Option<Parsed> {
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
    /// The value of header `name`.
    pub(super) fn get(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Sets header `name`, replacing any value.
    pub(super) fn set(&mut self, name: &str, value: &str) {
        self.headers.retain(|(n, _)| n != name);
        self.headers.push((name.into(), value.as_bytes().to_vec()));
    }

    /// Signs with SigV4 in the `Authorization` header.
    pub(super) fn sign_v4_header(&mut self, access: &str, secret: &str, now: time::OffsetDateTime) {
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

    /// Signs with SigV4 in the query (a presigned URL).
    pub(super) fn sign_v4_query(&mut self, access: &str, secret: &str, now: time::OffsetDateTime) {
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

    /// Signs with SigV2 in the `Authorization` header.
    pub(super) fn sign_v2_header(&mut self, access: &str, secret: &str, now: time::OffsetDateTime) {
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
        let key =
            ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
        let signature = base64::engine::general_purpose::STANDARD
            .encode(ring::hmac::sign(&key, to_sign.as_bytes()).as_ref());
        self.set("authorization", &format!("AWS {access}:{signature}"));
    }

    /// The request as the HTTP server hands it to the endpoint.
    pub(super) fn into_request(self) -> Option<http::Request<s3s::Body>> {
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

/// The date and timestamp SigV4 uses for `now`.
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

/// The SigV4 signature of `canonical`.
fn v4_signature(secret: &str, date: &str, stamp: &str, canonical: &str) -> String {
    let scope = format!("{date}/{REGION}/s3/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{}",
        hex::encode(ring::digest::digest(
            &ring::digest::SHA256,
            canonical.as_bytes()
        ))
    );
    let mut key = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    for part in [REGION, "s3", "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    hex::encode(hmac_sha256(&key, to_sign.as_bytes()))
}
