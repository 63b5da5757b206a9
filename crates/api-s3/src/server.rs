//! The HTTP side: building the s3s service and the accept loop.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hangar_model::ObjectService;
use hyper_util::rt::{TokioExecutor, TokioIo};
use s3s::service::{S3Service, S3ServiceBuilder};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::access::{AccessRules, KeyStore};
use crate::progress::{Progress, Stage};
use crate::sig_v2_path::BucketPaths;
use crate::S3Frontend;

/// Most client connections served at once; further ones wait in the backlog.
pub const CONNECTIONS_MAX: usize = 1024;
/// How long in-flight requests may finish after shutdown starts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// Largest read buffer of one HTTP/1 connection.
const READ_BUFFER_MAX: usize = 64 << 10;

/// Settings of the S3 endpoint.
#[derive(Clone, Debug)]
pub struct S3Settings {
    /// Region name returned to clients.
    pub region: String,
    /// When set, signatures scoped to another region and bucket creation with
    /// another location constraint are refused.
    pub pinned_region: Option<String>,
    /// Domain for virtual-host-style requests (`bucket.<root_domain>`).
    pub root_domain: Option<String>,
}

impl Default for S3Settings {
    fn default() -> Self {
        S3Settings {
            region: "hangar".into(),
            pinned_region: None,
            root_domain: None,
        }
    }
}

/// The s3s service for `model`.
pub fn build_service(
    model: ObjectService,
    settings: S3Settings,
) -> Result<S3Service, s3s::host::DomainError> {
    let root_domain = settings.root_domain.clone();
    let access = AccessRules {
        pinned_region: settings.pinned_region.clone(),
    };
    let mut b = S3ServiceBuilder::new(S3Frontend::new(model.clone(), settings));
    b.set_auth(KeyStore(model));
    b.set_access(access);
    if let Some(d) = root_domain {
        b.set_host(s3s::host::SingleDomain::new(&d)?);
    }
    Ok(b.build())
}

/// The S3 service and what the HTTP side does around it.
#[derive(Clone, Debug)]
pub struct S3Endpoint {
    service: S3Service,
    paths: BucketPaths,
}

/// The S3 endpoint of `model`, for [`serve`].
pub fn build_endpoint(
    model: ObjectService,
    settings: S3Settings,
) -> Result<S3Endpoint, s3s::host::DomainError> {
    let paths = BucketPaths::new(model.clone(), settings.root_domain.clone());
    Ok(S3Endpoint {
        service: build_service(model, settings)?,
        paths,
    })
}

/// Serves S3 on `listener` until `shutdown`, then lets in-flight requests finish.
pub async fn serve(listener: TcpListener, endpoint: S3Endpoint, shutdown: CancellationToken) {
    let permits = Arc::new(Semaphore::new(CONNECTIONS_MAX));
    let conns = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    let next_id = Arc::new(AtomicU64::new(rand_start()));
    loop {
        let permit = tokio::select! {
            () = shutdown.cancelled() => break,
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
        };
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Without it, small responses wait for the peer's delayed ACK (~40 ms).
        if let Err(e) = stream.set_nodelay(true) {
            debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let endpoint = endpoint.clone();
        let stop = conns.clone();
        let ids = next_id.clone();
        tasks.spawn(async move {
            serve_connection(stream, peer, endpoint, stop, ids).await;
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    info!("s3 endpoint stopping; finishing in-flight requests");
    conns.cancel();
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
}

/// One request from a connection (see [`S3Endpoint::respond`]).
async fn handle(
    endpoint: S3Endpoint,
    req: http::Request<hyper::body::Incoming>,
    id: String,
) -> Result<http::Response<s3s::Body>, s3s::HttpError> {
    endpoint.respond(req.map(s3s::Body::from), &id).await
}

impl S3Endpoint {
    /// Answers one request as the HTTP server does: the fixes it needs before
    /// s3s sees it, s3s, then the request id `id` (`x-amz-request-id` and the
    /// error body's `<RequestId>`), the log line and the connection's fate.
    /// Public so that a harness (the fuzz targets) can drive whole requests
    /// without sockets.
    pub async fn respond(
        &self,
        mut req: http::Request<s3s::Body>,
        id: &str,
    ) -> Result<http::Response<s3s::Body>, s3s::HttpError> {
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        self.paths.align(&mut req).await;
        let unanswered_expect = expects_continue_without_body(req.headers());
        let progress = Progress::default();
        req.extensions_mut().insert(progress.clone());
        let mut resp = self.service.call(req).await?;
        if resp.status() == http::StatusCode::INTERNAL_SERVER_ERROR
            && progress.stage() == Stage::Authorised
        {
            // Authorised but never handled: s3s failed to read the XML body
            // (see `progress`), the client's fault.
            resp = unreadable_body();
        }
        let status = resp.status();
        log_request(id, status, &method, &path);
        if let Ok(v) = http::HeaderValue::from_str(id) {
            resp.headers_mut().insert("x-amz-request-id", v);
        }
        if status.is_client_error() || status.is_server_error() {
            add_error_details(&mut resp, &path, id);
        }
        if unanswered_expect {
            // hyper sends no `100 Continue` for an empty body. Some clients
            // (botocore) then misread the next response on the connection, so
            // this connection ends with this response.
            resp.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
        }
        Ok(resp)
    }
}

/// The answer to a request whose whole body s3s could not read: its
/// aws-chunked encoding is malformed, a chunk signature does not match, or the
/// body ended early. s3s keeps the cause to itself, so the answer names them
/// all.
fn unreadable_body() -> http::Response<s3s::Body> {
    let err = s3s::S3Error::with_message(
        s3s::S3ErrorCode::IncompleteBody,
        "The request body could not be read: it ended early, its aws-chunked encoding is malformed, or a chunk signature does not match.",
    );
    match err.to_http_response() {
        Ok(r) => r,
        Err(_) => {
            let mut r = http::Response::new(s3s::Body::empty());
            *r.status_mut() = http::StatusCode::BAD_REQUEST;
            r
        }
    }
}

/// Adds `<Resource>` (the request path) and `<RequestId>` (equal to
/// `x-amz-request-id`) to an S3 error body, as S3 sends them; s3s leaves both
/// out. Error bodies are small and whole in memory; any other body is left as
/// it is.
fn add_error_details(resp: &mut http::Response<s3s::Body>, resource: &str, id: &str) {
    let Some(bytes) = resp.body().bytes() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return;
    };
    let Some(end) = text.rfind("</Error>") else {
        return;
    };
    if text.contains("<RequestId>") {
        return;
    }
    let resource = resource
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    // Errors raised by the protocol layer itself (a bucket name its path
    // parser refuses, say) come without a message; clients show it.
    let message = match (text.contains("<Message>"), error_code(text)) {
        (false, Some(code)) => format!("<Message>{}</Message>", default_message(code)),
        _ => String::new(),
    };
    let body = format!(
        "{}{message}<Resource>{resource}</Resource><RequestId>{id}</RequestId>{}",
        &text[..end],
        &text[end..]
    );
    if resp.headers().contains_key(http::header::CONTENT_LENGTH) {
        resp.headers_mut().insert(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from(body.len()),
        );
    }
    *resp.body_mut() = s3s::Body::from(body);
}

/// The `<Code>` of an S3 error body.
fn error_code(body: &str) -> Option<&str> {
    let start = body.find("<Code>")? + "<Code>".len();
    let len = body[start..].find("</Code>")?;
    Some(&body[start..start + len])
}

/// What S3 says for `code` when nothing more precise is known.
fn default_message(code: &str) -> &'static str {
    match code {
        "InvalidBucketName" => "The specified bucket is not valid.",
        "NoSuchBucket" => "The specified bucket does not exist.",
        "NoSuchKey" => "The specified key does not exist.",
        "InvalidURI" => "Couldn't parse the specified URI.",
        "MethodNotAllowed" => "The specified method is not allowed against this resource.",
        "NotImplemented" => "A header or operation you provided implies functionality that is not implemented.",
        "MalformedXML" => "The XML you provided was not well-formed or did not validate against the published schema.",
        "AccessDenied" => "Access Denied",
        "SignatureDoesNotMatch" => {
            "The request signature we calculated does not match the signature you provided."
        }
        "InvalidArgument" => "Invalid Argument",
        "InvalidRequest" => "Invalid Request",
        _ => "The request could not be served.",
    }
}

/// Whether a request asks for `100 Continue` with an empty body, which hyper
/// answers with the final response alone.
fn expects_continue_without_body(h: &http::HeaderMap) -> bool {
    let expects = h
        .get(http::header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"));
    let length = h
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok());
    let empty = match length {
        Some(l) => l.trim() == "0",
        None => !h.contains_key(http::header::TRANSFER_ENCODING),
    };
    expects && empty
}

/// One line per request, at the level its outcome deserves: client errors
/// and unsupported operations are the client's business (debug),
/// unavailability is a warning, any other server error an error.
fn log_request(id: &str, status: http::StatusCode, method: &http::Method, path: &str) {
    let code = status.as_u16();
    match code {
        503 => warn!(request_id = %id, status = code, %method, %path, "s3 request: unavailable"),
        500..=599 if code != 501 => {
            error!(request_id = %id, status = code, %method, %path, "s3 request: server error");
        }
        _ => debug!(request_id = %id, status = code, %method, %path, "s3 request"),
    }
}

fn rand_start() -> u64 {
    u64::from(std::process::id()) << 32
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    endpoint: S3Endpoint,
    stop: CancellationToken,
    ids: Arc<AtomicU64>,
) {
    let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let endpoint = endpoint.clone();
        let id = format!("{:016X}", ids.fetch_add(1, Ordering::Relaxed));
        handle(endpoint, req, id)
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // A connection's read buffer may grow to this size (hyper's default is about
    // 400 KiB): with hundreds of uploads at once, those buffers would weigh more
    // than the block buffers the upload budget bounds.
    builder.http1().max_buf_size(READ_BUFFER_MAX);
    let conn = builder.serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                debug!(%peer, error = %e, "connection ended with an error");
            }
        }
        () = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}
