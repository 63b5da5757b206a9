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
use tracing::{debug, info, warn};

use crate::access::{AccessRules, KeyStore};
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

/// Serves S3 on `listener` until `shutdown`, then lets in-flight requests finish.
pub async fn serve(listener: TcpListener, service: S3Service, shutdown: CancellationToken) {
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
        let service = service.clone();
        let stop = conns.clone();
        let ids = next_id.clone();
        tasks.spawn(async move {
            serve_connection(stream, peer, service, stop, ids).await;
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

fn rand_start() -> u64 {
    u64::from(std::process::id()) << 32
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    service: S3Service,
    stop: CancellationToken,
    ids: Arc<AtomicU64>,
) {
    let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let service = service.clone();
        let id = format!("{:016X}", ids.fetch_add(1, Ordering::Relaxed));
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        async move {
            let mut resp = hyper::service::Service::call(&service, req).await?;
            debug!(request_id = %id, status = resp.status().as_u16(), %method, %path, "s3 request");
            if let Ok(v) = http::HeaderValue::from_str(&id) {
                resp.headers_mut().insert("x-amz-request-id", v);
            }
            Ok::<_, s3s::HttpError>(resp)
        }
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
