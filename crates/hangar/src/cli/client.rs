//! A small HTTP client of the admin API: sends an [`AdminRequest`], returns the
//! parsed answer or the API's error message.

use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use hangar_api_admin::api::{
    GetBucketInfoRequest, GetBucketInfoResponse, GetKeyInfoRequest, GetKeyInfoResponse,
};
use hangar_api_admin::{AdminRequest, ErrorBody};
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::Request;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;

use super::AdminTarget;

/// How long one call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest answer read.
const MAX_ANSWER_BYTES: usize = 64 << 20;

/// A connection pool to one admin API.
pub(crate) struct AdminClient {
    /// URL without a trailing slash.
    base: String,
    token: String,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl AdminClient {
    /// A client of the admin API at `target` (plain `http://` only).
    pub(crate) fn new(target: &AdminTarget) -> anyhow::Result<Self> {
        let base = target.url.trim_end_matches('/').to_string();
        let uri: http::Uri = base
            .parse()
            .with_context(|| format!("invalid admin URL {:?}", target.url))?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            bail!(
                "admin URL must look like http://HOST:PORT, not {:?}",
                target.url
            );
        }
        if target.token.is_empty() {
            bail!("no admin token: pass --admin-token or set HANGAR_ADMIN_TOKEN");
        }
        Ok(AdminClient {
            base,
            token: target.token.clone(),
            http: Client::builder(TokioExecutor::new()).build_http(),
        })
    }

    /// Sends `request` and parses a successful answer as `T`; an error answer
    /// becomes an error carrying the API's code and message.
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        request: &AdminRequest,
    ) -> anyhow::Result<T> {
        let parts = request.to_http();
        let http_request = Request::builder()
            .method(parts.method)
            .uri(format!("{}{}", self.base, parts.path_and_query))
            .header(AUTHORIZATION, format!("Bearer {}", self.token))
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(parts.body.unwrap_or_default())))
            .context("building the admin request")?;
        let answer = tokio::time::timeout(CALL_TIMEOUT, async {
            let response = self
                .http
                .request(http_request)
                .await
                .with_context(|| format!("cannot reach the admin API at {}", self.base))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| anyhow!("reading the admin API's answer: {e}"))?
                .to_bytes();
            anyhow::Ok((status, body))
        })
        .await
        .with_context(|| format!("the admin API at {} did not answer in time", self.base))?;
        let (status, body) = answer?;
        if !status.is_success() {
            match serde_json::from_slice::<ErrorBody>(&body) {
                Ok(error) => bail!("{}: {}", error.code, error.message),
                Err(_) => bail!(
                    "admin API answered {status}: {}",
                    String::from_utf8_lossy(&body).trim()
                ),
            }
        }
        serde_json::from_slice(&body)
            .with_context(|| format!("unexpected answer to {} from the admin API", request.name()))
    }

    /// The key whose id or name is `pattern`, or whose id starts with it.
    pub(crate) async fn find_key(
        &self,
        pattern: &str,
        show_secret_key: bool,
    ) -> anyhow::Result<GetKeyInfoResponse> {
        self.call(&AdminRequest::GetKeyInfo(GetKeyInfoRequest {
            id: None,
            search: Some(pattern.to_string()),
            show_secret_key,
        }))
        .await
    }

    /// The bucket with global name `pattern`, or whose id is or starts with it.
    pub(crate) async fn find_bucket(&self, pattern: &str) -> anyhow::Result<GetBucketInfoResponse> {
        self.call(&AdminRequest::GetBucketInfo(GetBucketInfoRequest {
            id: None,
            global_alias: None,
            search: Some(pattern.to_string()),
        }))
        .await
    }
}
