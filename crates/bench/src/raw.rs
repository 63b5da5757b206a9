//! A lean S3 client for the measured requests of `hangar-bench s3 --client raw`.
//!
//! The AWS SDK costs about 200 µs of client CPU per small request on this machine
//! class, more than a fast server spends; on two cores shared with the server it
//! would measure mostly itself. This client signs with `aws-sigv4` (the SDK's own
//! signer) and sends through a pooled hyper client, nothing else: no retries, no
//! endpoint rules, no interceptors. PUT, GET and ListObjectsV2 pages; setup and
//! everything else use the SDK.

use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::s3::Payload;

/// Signs and sends PUT and GET requests to one endpoint.
pub(crate) struct RawClient {
    http: Client<HttpConnector, Full<Bytes>>,
    /// `http://host:port`, no trailing slash.
    endpoint: String,
    identity: Identity,
    region: String,
}

impl RawClient {
    /// A client for `endpoint` (`http://host:port`) with these credentials.
    pub(crate) fn new(endpoint: &str, access_key: &str, secret_key: &str, region: &str) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        let identity = Credentials::new(access_key, secret_key, None, None, "hangar-bench").into();
        RawClient {
            http,
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            identity,
            region: region.to_owned(),
        }
    }

    fn request(
        &self,
        method: &str,
        bucket: &str,
        key: &str,
        body: Bytes,
        payload: Payload,
    ) -> anyhow::Result<http::Request<Full<Bytes>>> {
        let key = urlencoding::encode(key).replace("%2F", "/");
        let uri = format!("{}/{bucket}/{key}", self.endpoint);
        self.signed(method, uri, body, payload)
    }

    fn signed(
        &self,
        method: &str,
        uri: String,
        body: Bytes,
        payload: Payload,
    ) -> anyhow::Result<http::Request<Full<Bytes>>> {
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .context("signing parameters")?
            .into();
        let signable_body = match payload {
            Payload::Signed => SignableBody::Bytes(&body),
            Payload::Unsigned => SignableBody::UnsignedPayload,
        };
        let length = body.len().to_string();
        let headers = [("content-length", length.as_str())];
        let signable = SignableRequest::new(method, &uri, headers.into_iter(), signable_body)
            .context("signable request")?;
        let (instructions, _) = sign(signable, &params).context("signing")?.into_parts();
        let mut request = http::Request::builder()
            .method(method)
            .uri(&uri)
            .header("content-length", length)
            .body(Full::new(body))
            .context("request")?;
        instructions.apply_to_request_http1x(&mut request);
        Ok(request)
    }

    /// PutObject of `body`.
    pub(crate) async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        payload: Payload,
    ) -> anyhow::Result<()> {
        let request = self.request("PUT", bucket, key, body, payload)?;
        let response = self.http.request(request).await.context("put")?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .context("put: response")?;
        if !status.is_success() {
            bail!(
                "put {key}: HTTP {status}: {}",
                String::from_utf8_lossy(&body.to_bytes())
            );
        }
        Ok(())
    }

    /// One ListObjectsV2 page of up to 1,000 keys under `prefix`: returns the
    /// number of keys and the continuation token, if the listing is truncated.
    /// The XML is scanned for `<Key>` and `<NextContinuationToken>`, nothing more.
    pub(crate) async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        token: Option<&str>,
    ) -> anyhow::Result<(usize, Option<String>)> {
        let mut uri = format!(
            "{}/{bucket}?list-type=2&max-keys=1000&prefix={}",
            self.endpoint,
            urlencoding::encode(prefix)
        );
        if let Some(t) = token {
            uri.push_str("&continuation-token=");
            uri.push_str(&urlencoding::encode(t));
        }
        let request = self.signed("GET", uri, Bytes::new(), Payload::Signed)?;
        let response = self.http.request(request).await.context("list")?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .context("list: body")?
            .to_bytes();
        let text = std::str::from_utf8(&body).context("list: body is not UTF-8")?;
        if !status.is_success() {
            bail!("list {prefix}: HTTP {status}: {text}");
        }
        let keys = text.matches("<Key>").count();
        let truncated = text.contains("<IsTruncated>true</IsTruncated>");
        let next = element(text, "NextContinuationToken").map(unescape_xml);
        match (truncated, next) {
            (true, Some(t)) => Ok((keys, Some(t))),
            (true, None) => bail!("list {prefix}: truncated without a continuation token"),
            (false, _) => Ok((keys, None)),
        }
    }

    /// GetObject, reading the whole body; returns the time from `t0` to the
    /// first body bytes and the body's length.
    pub(crate) async fn get(
        &self,
        bucket: &str,
        key: &str,
        t0: Instant,
    ) -> anyhow::Result<(Duration, u64)> {
        let request = self.request("GET", bucket, key, Bytes::new(), Payload::Signed)?;
        let response = self.http.request(request).await.context("get")?;
        let status = response.status();
        let mut body = response.into_body();
        if !status.is_success() {
            let text = body
                .collect()
                .await
                .map(http_body_util::Collected::to_bytes)
                .unwrap_or_default();
            bail!(
                "get {key}: HTTP {status}: {}",
                String::from_utf8_lossy(&text)
            );
        }
        let mut first = None;
        let mut len = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.with_context(|| format!("get {key}: body"))?;
            if let Some(data) = frame.data_ref() {
                if first.is_none() && !data.is_empty() {
                    first = Some(t0.elapsed());
                }
                len += data.len() as u64;
            }
        }
        Ok((first.unwrap_or_else(|| t0.elapsed()), len))
    }
}

/// The text of the first `<name>` element of `xml`.
fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&format!("</{name}>"))?;
    Some(&xml[start..start + len])
}

/// Undoes the five predefined XML entities.
fn unescape_xml(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_pages_are_scanned_for_keys_and_the_token() {
        let xml = "<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>a</Key>\
                   </Contents><Contents><Key>b&amp;c</Key></Contents>\
                   <NextContinuationToken>x&amp;y+/=</NextContinuationToken></ListBucketResult>";
        assert_eq!(xml.matches("<Key>").count(), 2);
        assert_eq!(
            element(xml, "NextContinuationToken")
                .map(unescape_xml)
                .as_deref(),
            Some("x&y+/=")
        );
        assert_eq!(element(xml, "Missing"), None);
    }
}
