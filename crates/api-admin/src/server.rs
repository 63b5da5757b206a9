//! The HTTP server: accept loop, one task per connection, the bearer token check,
//! the body limit, and the HTTP form of answers and errors.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hangar_cluster::System;
use hangar_model::ObjectService;
use hangar_util::Hash;
use http::header::{
    ALLOW, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE,
};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, debug_span, error, info, warn, Instrument, Span};

use crate::api::{AdminRequest, AdminResponse};
use crate::error::{Error, Result};
use crate::handler::handle;

/// Largest request body accepted (larger: `413`).
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// How long a client may take to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`serve`] waits for open connections once cancelled.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause after a failed `accept` (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What every connection shares.
struct State {
    service: ObjectService,
    cluster: Arc<System>,
    /// Hash of the admin token: comparing hashes takes the same time whatever
    /// the length or content of the token presented.
    token_hash: Hash,
}

/// Serves the admin API on `listener` until `shutdown` is cancelled, then stops
/// accepting, lets open connections finish their requests (at most
/// `DRAIN_TIMEOUT`, 30 s) and returns.
///
/// Every endpoint but `GET /health` needs `Authorization: Bearer <token>`.
/// Fails at once if `token` is empty.
pub async fn serve(
    listener: TcpListener,
    service: ObjectService,
    cluster: Arc<System>,
    token: String,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    if token.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "admin token must not be empty",
        ));
    }
    let state = Arc::new(State {
        service,
        cluster,
        token_hash: Hash::of(token.as_bytes()),
    });
    let connections = TaskTracker::new();
    info!(addr = ?listener.local_addr().ok(), "admin api listening");
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                warn!(error = %e, "failed to accept an admin connection");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        if let Err(e) = stream.set_nodelay(true) {
            debug!(%peer, error = %e, "failed to set TCP_NODELAY");
        }
        let span = debug_span!("admin_connection", %peer);
        connections
            .spawn(serve_connection(stream, state.clone(), shutdown.clone()).instrument(span));
    }
    connections.close();
    info!(open = connections.len(), "admin api draining");
    if tokio::time::timeout(DRAIN_TIMEOUT, connections.wait())
        .await
        .is_err()
    {
        warn!(
            open = connections.len(),
            "admin connections still open after the drain timeout"
        );
    }
    Ok(())
}

/// Serves HTTP/1.1 on one connection; once `shutdown` is cancelled, finishes the
/// request in flight and closes.
async fn serve_connection(stream: TcpStream, state: Arc<State>, shutdown: CancellationToken) {
    let service = service_fn(move |request| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(respond(&state, request).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    let mut closing = false;
    let result = loop {
        tokio::select! {
            result = conn.as_mut() => break result,
            () = shutdown.cancelled(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    };
    if let Err(e) = result {
        debug!(error = %e, "admin connection ended with an error");
    }
}

/// Answers one request; errors become JSON error answers.
async fn respond(state: &State, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_string();
    let span = debug_span!(
        "admin_request",
        method = %request.method(),
        path = %path,
        op = tracing::field::Empty,
    );
    async {
        match dispatch(state, request).await {
            Ok(response) => {
                debug!(status = response.status().as_u16(), "admin request done");
                response
            }
            Err(e) => {
                let (code, status) = e.code_and_status();
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    warn!(%code, error = %e, "admin request: cluster unavailable");
                } else if status.is_server_error() {
                    error!(%code, error = %e, "admin request failed");
                } else {
                    debug!(%code, status = status.as_u16(), error = %e, "admin request refused");
                }
                error_response(&e, &path)
            }
        }
    }
    .instrument(span)
    .await
}

async fn dispatch(state: &State, request: Request<Incoming>) -> Result<Response<Full<Bytes>>> {
    if AdminRequest::needs_auth(request.uri().path()) {
        check_token(&state.token_hash, request.headers())?;
    }
    let (parts, body) = request.into_parts();
    let body = read_body(&parts.headers, body).await?;
    let request =
        AdminRequest::from_http(&parts.method, parts.uri.path(), parts.uri.query(), &body)?;
    Span::current().record("op", request.name());
    let response = handle(&state.service, &state.cluster, request).await?;
    Ok(into_http(response))
}

/// Checks `Authorization: Bearer <token>` against the hash of the admin token.
fn check_token(expected: &Hash, headers: &HeaderMap) -> Result<()> {
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or(Error::Unauthorized)?;
    if constant_time_eq(Hash::of(token.as_bytes()).as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(Error::Forbidden)
    }
}

/// Equality of two hashes that reads every byte whatever their content.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// The whole body, refused beyond [`MAX_BODY_BYTES`] (early when declared).
async fn read_body(headers: &HeaderMap, body: Incoming) -> Result<Bytes> {
    let too_large = Error::PayloadTooLarge {
        limit: MAX_BODY_BYTES,
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large);
    }
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(too_large),
        Err(e) => Err(Error::Body {
            message: e.to_string(),
        }),
    }
}

/// The HTTP form of every answer.
fn into_http(response: AdminResponse) -> Response<Full<Bytes>> {
    match response {
        AdminResponse::Health(r) => json_response(StatusCode::OK, &r),
        AdminResponse::Metrics(text) => {
            let mut response = Response::new(Full::new(Bytes::from(text)));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        AdminResponse::KeyList(r) => json_response(StatusCode::OK, &r),
        AdminResponse::KeyInfo(r) => json_response(StatusCode::OK, &r),
        AdminResponse::BucketList(r) => json_response(StatusCode::OK, &r),
        AdminResponse::BucketInfo(r) => json_response(StatusCode::OK, &r),
        AdminResponse::Empty(r) => json_response(StatusCode::OK, &r),
        AdminResponse::NodeInfo(r) => json_response(StatusCode::OK, &r),
        AdminResponse::ClusterStatus(r) => json_response(StatusCode::OK, &r),
        AdminResponse::ClusterHealth(r) => json_response(StatusCode::OK, &r),
        AdminResponse::ConnectNodes(r) => json_response(StatusCode::OK, &r),
        AdminResponse::ClusterLayout(r) => json_response(StatusCode::OK, &r),
        AdminResponse::LayoutPreview(r) => json_response(StatusCode::OK, &r),
        AdminResponse::LayoutApplied(r) => json_response(StatusCode::OK, &r),
        AdminResponse::LayoutHistory(r) => json_response(StatusCode::OK, &r),
        AdminResponse::SkippedDeadNodes(r) => json_response(StatusCode::OK, &r),
        AdminResponse::Workers(r) => json_response(StatusCode::OK, &r),
        AdminResponse::TableRoots(r) => json_response(StatusCode::OK, &r),
        AdminResponse::Repair(r) => json_response(StatusCode::OK, &r),
    }
}

/// The HTTP form of `error` for a request to `path`.
fn error_response(error: &Error, path: &str) -> Response<Full<Bytes>> {
    let (_, status) = error.code_and_status();
    let mut response = json_response(status, &error.body(path));
    match error {
        Error::Unauthorized => {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        Error::MethodNotAllowed { allowed, .. } => {
            if let Ok(v) = HeaderValue::from_str(allowed.as_str()) {
                response.headers_mut().insert(ALLOW, v);
            }
        }
        _ if status == StatusCode::SERVICE_UNAVAILABLE => {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
        }
        _ => {}
    }
    response
}

/// How long a client should wait before retrying a request the cluster could
/// not serve (too few nodes answered): about the time peers take to reconnect.
const RETRY_AFTER_SECS: &str = "1";

fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(value).expect("response types serialise to JSON without fail");
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
