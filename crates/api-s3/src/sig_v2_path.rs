//! The canonical resource of SigV2 bucket requests.
//!
//! botocore's SigV2 (`signature_version="s3"`) signs a path-style bucket
//! request, sent to `/bucket`, with the canonical resource `/bucket/`, while
//! s3s signs the path as sent; AWS accepts both. Before s3s sees such a
//! request, [`BucketPaths::align`] finds which of the two the signature covers
//! and, for the slash form, hands s3s the path the client signed. Nothing else
//! about the request changes, and a signature that matches neither form is
//! left for s3s to refuse.

use base64::Engine;
use hangar_model::ObjectService;
use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, Method, Request, Uri};

/// Sub-resources that are part of a SigV2 canonical resource (sorted, as
/// the string to sign lists them).
const SUB_RESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "defaultObjectAcl",
    "delete",
    "inventory",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "select",
    "select-type",
    "storageClass",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// Aligns the paths of SigV2 bucket requests with what their client signed.
#[derive(Clone, Debug)]
pub struct BucketPaths {
    model: ObjectService,
    root_domain: Option<String>,
}

/// Where a SigV2 request carries its signature.
enum Signed<'a> {
    Header {
        access_key: &'a str,
        signature: &'a str,
    },
    Query {
        access_key: String,
        signature: String,
        expires: String,
    },
}

impl BucketPaths {
    /// For requests to `model`; `root_domain` as in the S3 settings.
    pub fn new(model: ObjectService, root_domain: Option<String>) -> Self {
        BucketPaths { model, root_domain }
    }

    /// Rewrites `/bucket` to `/bucket/` when `req` is a SigV2 request whose
    /// signature covers `/bucket/` and not `/bucket`.
    pub async fn align<B>(&self, req: &mut Request<B>) {
        let path = req.uri().path();
        let is_bucket_path = path.len() > 1 && !path[1..].contains('/');
        if !is_bucket_path || self.is_virtual_host(req.headers()) {
            return;
        }
        let query = req.uri().query().unwrap_or("");
        let Some(signed) = signed(req.headers(), query) else {
            return;
        };
        let (access_key, signature) = match &signed {
            Signed::Header {
                access_key,
                signature,
            } => (*access_key, *signature),
            Signed::Query {
                access_key,
                signature,
                ..
            } => (access_key.as_str(), signature.as_str()),
        };
        let Ok(key) = self.model.get_key(access_key).await else {
            return; // s3s answers for unknown keys
        };
        let sign = |resource: &str| {
            let expires = match &signed {
                Signed::Header { .. } => None,
                Signed::Query { expires, .. } => Some(expires.as_str()),
            };
            let text = string_to_sign(req.method(), req.headers(), expires, resource, query);
            hmac_sha1_base64(&key.secret, &text)
        };
        if sign(path) == signature || sign(&format!("{path}/")) != signature {
            return;
        }
        let fixed = match req.uri().query() {
            Some(q) => format!("{path}/?{q}"),
            None => format!("{path}/"),
        };
        let mut parts = req.uri().clone().into_parts();
        if let Ok(pq) = fixed.parse() {
            parts.path_and_query = Some(pq);
            if let Ok(uri) = Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
    }

    /// Whether the request names its bucket in `Host` (the path is then a key).
    fn is_virtual_host(&self, headers: &HeaderMap) -> bool {
        let Some(domain) = &self.root_domain else {
            return false;
        };
        let host = headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
        host.len() > domain.len() + 1
            && host.ends_with(domain.as_str())
            && host.as_bytes()[host.len() - domain.len() - 1] == b'.'
    }
}

/// The SigV2 credentials of a request, if it carries any.
fn signed<'a>(headers: &'a HeaderMap, query: &str) -> Option<Signed<'a>> {
    if let Some(auth) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let (access_key, signature) = auth.strip_prefix("AWS ")?.split_once(':')?;
        return Some(Signed::Header {
            access_key,
            signature,
        });
    }
    let (mut access_key, mut signature, mut expires) = (None, None, None);
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "AWSAccessKeyId" => access_key = Some(v.into_owned()),
            "Signature" => signature = Some(v.into_owned()),
            "Expires" => expires = Some(v.into_owned()),
            _ => {}
        }
    }
    Some(Signed::Query {
        access_key: access_key?,
        signature: signature?,
        expires: expires?,
    })
}

/// A header's value when it is sent exactly once.
fn unique<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    let mut all = headers.get_all(name).iter();
    match (all.next(), all.next()) {
        (Some(v), None) => v.to_str().unwrap_or(""),
        _ => "",
    }
}

/// The SigV2 string to sign, with `resource` as the canonical path; `expires`
/// is the presigned URL's, `None` for a signed header.
fn string_to_sign(
    method: &Method,
    headers: &HeaderMap,
    expires: Option<&str>,
    resource: &str,
    query: &str,
) -> String {
    let mut s = format!(
        "{}\n{}\n{}\n",
        method.as_str(),
        unique(headers, "content-md5"),
        unique(headers, "content-type")
    );
    match expires {
        Some(e) => s.push_str(e),
        // x-amz-date, when sent, stands for Date.
        None if headers.contains_key("x-amz-date") => {}
        None => s.push_str(unique(headers, "date")),
    }
    s.push('\n');
    let mut names: Vec<&str> = headers
        .keys()
        .map(http::HeaderName::as_str)
        .filter(|n| n.starts_with("x-amz-"))
        .collect();
    names.sort_unstable();
    for name in names {
        let values: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::trim)
            .collect();
        s.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    s.push_str(resource);
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut first = true;
    for sub in SUB_RESOURCES {
        let mut found = pairs.iter().filter(|(k, _)| k == sub);
        let (Some((_, v)), None) = (found.next(), found.next()) else {
            continue;
        };
        s.push(if first { '?' } else { '&' });
        first = false;
        s.push_str(sub);
        if !v.is_empty() {
            s.push('=');
            s.push_str(v);
        }
    }
    s
}

fn hmac_sha1_base64(secret: &str, text: &str) -> String {
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(text.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the S3 SigV2 documentation (a bucket listing).
    #[test]
    fn string_to_sign_follows_the_documented_example() {
        let mut h = HeaderMap::new();
        h.insert(
            "date",
            "Tue, 27 Mar 2007 19:42:41 +0000".parse().expect("date"),
        );
        let s = string_to_sign(
            &Method::GET,
            &h,
            None,
            "/awsexamplebucket1/",
            "prefix=photos&max-keys=50&marker=puppy",
        );
        assert_eq!(
            s,
            "GET\n\n\nTue, 27 Mar 2007 19:42:41 +0000\n/awsexamplebucket1/"
        );
        assert_eq!(
            hmac_sha1_base64("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", &s),
            "m0WP8eCtspQl5Ahe6L1SozdX9YA="
        );
    }

    #[test]
    fn amz_headers_and_sub_resources_are_canonical() {
        let mut h = HeaderMap::new();
        h.insert("x-amz-meta-b", " two ".parse().expect("value"));
        h.append("x-amz-meta-a", "1".parse().expect("value"));
        h.append("x-amz-meta-a", "2".parse().expect("value"));
        h.insert("x-amz-date", "now".parse().expect("value"));
        h.insert("date", "ignored".parse().expect("value"));
        let s = string_to_sign(&Method::PUT, &h, None, "/b/", "uploads&x=1&acl");
        assert_eq!(
            s,
            "PUT\n\n\n\nx-amz-date:now\nx-amz-meta-a:1,2\nx-amz-meta-b:two\n/b/?acl&uploads"
        );
    }
}
