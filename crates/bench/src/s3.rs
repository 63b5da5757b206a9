//! `hangar-bench s3`: a bounded S3 load generator on `aws-sdk-s3`.
//!
//! The client uses path-style addressing over plain HTTP, no retries (a failed
//! request counts as an error) and computes/validates checksums only where the
//! protocol requires them. `concurrency` tasks each run one request at a time
//! until `duration_secs` have passed or `max_ops` operations were started.
//!
//! Operations:
//! - `put`: uploads `size`-byte objects (one random buffer, reused) under fresh keys.
//! - `get`: makes sure `keys` objects of `size` bytes exist, then reads them at
//!   random; records time to the first body chunk and time to the last byte.
//! - `list`: makes sure `keys` objects exist, then one operation lists them all
//!   with ListObjectsV2 (1000 per page, following continuation tokens).
//! - `delete`: uploads `keys` objects first, then deletes them, one per operation;
//!   the run also ends when they are all gone.
//!
//! MB/s counts 10^6 bytes of object payload; it is `null` for `list` and `delete`.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context};
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use bytes::Bytes;
use futures::StreamExt;
use rand::{Rng, RngCore, SeedableRng};
use serde::Serialize;

use crate::raw::RawClient;
use crate::stats::{round3, sort_samples, Latency, Ttfb};

/// Hard cap on operations in one run, whatever `--max-ops` says.
const MAX_OPS_CAP: u64 = 10_000_000;
/// Errors printed to stderr per run; the rest are only counted.
const ERRORS_LOGGED_MAX: u64 = 5;
/// Concurrency of the setup phase (creating objects before get/list/delete).
const SETUP_CONCURRENCY_MIN: usize = 16;

/// The S3 operation to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// PutObject of `size` bytes.
    Put,
    /// GetObject of a random existing object.
    Get,
    /// ListObjectsV2 over all `keys` objects of the prefix.
    List,
    /// DeleteObject of an object created beforehand.
    Delete,
}

/// Which client sends the measured PUT and GET requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientKind {
    /// `aws-sdk-s3`, as applications use it (about 200 µs of client CPU per request).
    Sdk,
    /// A lean client: `aws-sigv4` signing over a pooled hyper client.
    Raw,
}

/// How PUT bodies are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Payload {
    /// SHA-256 of the body in the signature, as SDKs do over plain HTTP: the
    /// client hashes the whole body before sending it, the server hashes it again.
    Signed,
    /// `UNSIGNED-PAYLOAD`, as SDKs do over HTTPS (TLS protects the body).
    Unsigned,
}

/// The endpoint, credentials and bucket a load is sent to.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// S3 endpoint, e.g. http://127.0.0.1:3900.
    #[arg(long)]
    pub endpoint: String,
    /// Access key id.
    #[arg(long)]
    pub access_key: String,
    /// Secret access key.
    #[arg(long)]
    pub secret_key: String,
    /// Region used for signing.
    #[arg(long, default_value = "hangar")]
    pub region: String,
    /// Bucket (must exist).
    #[arg(long)]
    pub bucket: String,
}

impl Target {
    /// An SDK client for this target.
    pub(crate) fn sdk_client(&self) -> Client {
        make_client(
            &self.endpoint,
            &self.access_key,
            &self.secret_key,
            &self.region,
        )
    }

    /// A lean client for this target.
    pub(crate) fn raw_client(&self) -> RawClient {
        RawClient::new(
            &self.endpoint,
            &self.access_key,
            &self.secret_key,
            &self.region,
        )
    }
}

/// Options of the `s3` subcommand.
#[derive(Debug, clap::Args)]
pub struct S3Args {
    /// Where to send requests.
    #[command(flatten)]
    pub target: Target,
    /// Operation to run.
    #[arg(long, value_enum)]
    pub op: Op,
    /// Object size in bytes.
    #[arg(long)]
    pub size: u64,
    /// Requests in flight at once.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub concurrency: u64,
    /// Length of the measured phase in seconds.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub duration_secs: u64,
    /// Objects created before a get/list/delete run.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub keys: u64,
    /// Key prefix; default: a fresh `hangar-bench/<unix-ms>/` so runs do not mix.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Client of the measured PUT, GET and LIST requests (setup uses the SDK).
    #[arg(long, value_enum, default_value_t = ClientKind::Raw)]
    pub client: ClientKind,
    /// Payload signing of PUT bodies.
    #[arg(long, value_enum, default_value_t = Payload::Signed)]
    pub payload: Payload,
    /// Stop after this many operations (at most 10 million).
    #[arg(long, default_value_t = MAX_OPS_CAP, value_parser = clap::value_parser!(u64).range(1..=MAX_OPS_CAP))]
    pub max_ops: u64,
}

#[derive(Serialize)]
struct Report {
    op: Op,
    size: u64,
    concurrency: u64,
    client: ClientKind,
    payload: Payload,
    duration_s: f64,
    ops: u64,
    errors: u64,
    ops_per_s: f64,
    mb_per_s: Option<f64>,
    latency_ms: Latency,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttfb_ms: Option<Ttfb>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keys: Option<u64>,
    prefix: String,
}

/// State shared by the worker tasks of one run.
struct Shared {
    client: Client,
    /// The lean client, with `--client raw`.
    raw: Option<RawClient>,
    bucket: String,
    prefix: String,
    op: Op,
    size: u64,
    payload: Payload,
    body: Bytes,
    /// Keys created by the setup phase (get, list, delete).
    keys: Vec<String>,
    deadline: Instant,
    max_ops: u64,
    started: AtomicU64,
    next_delete: AtomicUsize,
    errors_logged: AtomicU64,
}

/// What one worker measured.
#[derive(Default)]
struct WorkerResult {
    latency_ms: Vec<f64>,
    ttfb_ms: Vec<f64>,
    errors: u64,
}

/// Runs the load generator and prints one JSON object.
pub fn run(args: &S3Args) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    rt.block_on(Box::pin(run_async(args)))
}

async fn run_async(args: &S3Args) -> anyhow::Result<()> {
    let client = args.target.sdk_client();
    let size = usize::try_from(args.size).context("object size")?;
    let mut body = vec![0u8; size];
    rand::rngs::StdRng::from_entropy().fill_bytes(&mut body);
    let body = Bytes::from(body);
    let prefix = match &args.prefix {
        Some(p) => p.clone(),
        None => {
            let ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .context("clock before 1970")?
                .as_millis();
            format!("hangar-bench/{ms}/")
        }
    };
    let concurrency = usize::try_from(args.concurrency).context("concurrency")?;

    let keys = match args.op {
        Op::Put => Vec::new(),
        Op::Get | Op::List => {
            let keys = numbered_keys(&prefix, args.op, args.keys);
            ensure_objects(
                &client,
                &args.target.bucket,
                &keys,
                &body,
                concurrency,
                true,
            )
            .await?;
            keys
        }
        Op::Delete => {
            let keys = numbered_keys(&prefix, args.op, args.keys);
            ensure_objects(
                &client,
                &args.target.bucket,
                &keys,
                &body,
                concurrency,
                false,
            )
            .await?;
            keys
        }
    };

    let start = Instant::now();
    let raw = (args.client == ClientKind::Raw).then(|| args.target.raw_client());
    let shared = Arc::new(Shared {
        client,
        raw,
        bucket: args.target.bucket.clone(),
        prefix: prefix.clone(),
        op: args.op,
        size: args.size,
        payload: args.payload,
        body,
        keys,
        deadline: start + Duration::from_secs(args.duration_secs),
        max_ops: args.max_ops.min(MAX_OPS_CAP),
        started: AtomicU64::new(0),
        next_delete: AtomicUsize::new(0),
        errors_logged: AtomicU64::new(0),
    });
    let handles: Vec<_> = (0..concurrency)
        .map(|w| tokio::spawn(worker(shared.clone(), w)))
        .collect();
    let mut latency = Vec::new();
    let mut ttfb = Vec::new();
    let mut errors = 0;
    for h in handles {
        let r = h.await.context("worker task failed")?;
        latency.extend(r.latency_ms);
        ttfb.extend(r.ttfb_ms);
        errors += r.errors;
    }
    let elapsed = start.elapsed().as_secs_f64();

    sort_samples(&mut latency);
    sort_samples(&mut ttfb);
    let ops = latency.len() as u64;
    let ops_per_s = ops as f64 / elapsed;
    let mb_per_s = match args.op {
        Op::Put | Op::Get => Some(round3(ops_per_s * args.size as f64 / 1e6)),
        Op::List | Op::Delete => None,
    };
    let report = Report {
        op: args.op,
        size: args.size,
        concurrency: args.concurrency,
        client: args.client,
        payload: args.payload,
        duration_s: round3(elapsed),
        ops,
        errors,
        ops_per_s: round3(ops_per_s),
        mb_per_s,
        latency_ms: Latency::of_sorted(&latency),
        ttfb_ms: (args.op == Op::Get).then(|| Ttfb::of_sorted(&ttfb)),
        keys: (args.op != Op::Put).then_some(args.keys),
        prefix,
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// An SDK client for `endpoint`: path-style, plain HTTP, no retries, checksums
/// only where the protocol requires them.
pub(crate) fn make_client(
    endpoint: &str,
    access_key: &str,
    secret_key: &str,
    region: &str,
) -> Client {
    let creds = aws_credential_types::Credentials::from_keys(access_key, secret_key, None);
    let http = aws_smithy_http_client::Builder::new().build_http();
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .credentials_provider(creds)
        .region(Region::new(region.to_owned()))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .http_client(http)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_timeout(Duration::from_secs(60))
                .build(),
        )
        .build();
    Client::from_conf(config)
}

fn numbered_keys(prefix: &str, op: Op, n: u64) -> Vec<String> {
    let dir = match op {
        Op::Put => "put",
        Op::Get => "get",
        Op::List => "list",
        Op::Delete => "delete",
    };
    (0..n).map(|i| format!("{prefix}{dir}/{i:08}")).collect()
}

/// Creates `keys` with `body`. With `reuse`, an object that already exists with
/// the right size is left alone (HEAD first), so a repeated run with the same
/// `--prefix` skips the uploads.
async fn ensure_objects(
    client: &Client,
    bucket: &str,
    keys: &[String],
    body: &Bytes,
    concurrency: usize,
    reuse: bool,
) -> anyhow::Result<()> {
    let size = i64::try_from(body.len()).context("object size")?;
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(keys)
        .map(|key| async move {
            if reuse {
                if let Ok(head) = client.head_object().bucket(bucket).key(key).send().await {
                    if head.content_length() == Some(size) {
                        return Ok(());
                    }
                }
            }
            client
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(ByteStream::from(body.clone()))
                .send()
                .await
                .map_err(|e| sdk_err(&format!("setup put {key}"), &e))?;
            Ok(())
        })
        .buffer_unordered(concurrency.max(SETUP_CONCURRENCY_MIN))
        .collect()
        .await;
    results.into_iter().collect()
}

async fn worker(shared: Arc<Shared>, id: usize) -> WorkerResult {
    let mut rng = rand::rngs::StdRng::seed_from_u64(id as u64);
    let mut res = WorkerResult::default();
    let mut seq = 0u64;
    loop {
        if Instant::now() >= shared.deadline
            || shared.started.fetch_add(1, Ordering::Relaxed) >= shared.max_ops
        {
            break;
        }
        let t0 = Instant::now();
        let outcome = match shared.op {
            Op::Put => {
                seq += 1;
                let key = format!("{}put/{id:05}/{seq:010}", shared.prefix);
                put(&shared, &key).await.map(|()| None)
            }
            Op::Get => {
                let key = pick(&shared.keys, &mut rng);
                get(&shared, key, t0).await.map(Some)
            }
            Op::List => list(&shared).await.map(|()| None),
            Op::Delete => {
                let i = shared.next_delete.fetch_add(1, Ordering::Relaxed);
                let Some(key) = shared.keys.get(i) else {
                    break; // every object created beforehand is gone
                };
                delete(&shared, key).await.map(|()| None)
            }
        };
        match outcome {
            Ok(ttfb) => {
                res.latency_ms.push(ms(t0.elapsed()));
                if let Some(t) = ttfb {
                    res.ttfb_ms.push(ms(t));
                }
            }
            Err(e) => {
                res.errors += 1;
                if shared.errors_logged.fetch_add(1, Ordering::Relaxed) < ERRORS_LOGGED_MAX {
                    eprintln!("hangar-bench: {:?} failed: {e:#}", shared.op);
                }
            }
        }
    }
    res
}

fn pick<'a>(keys: &'a [String], rng: &mut impl Rng) -> &'a str {
    keys.get(rng.gen_range(0..keys.len().max(1)))
        .map_or("", String::as_str)
}

/// A short message for an SDK error: the S3 error code and message when the
/// server answered, the whole error chain otherwise.
pub(crate) fn sdk_err<E, R>(what: &str, e: &SdkError<E, R>) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e.code() {
        Some(code) => match e.message() {
            Some(m) => anyhow!("{what}: {code}: {m}"),
            None => anyhow!("{what}: {code}"),
        },
        None => anyhow!("{what}: {}", DisplayErrorContext(e)),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn put(s: &Shared, key: &str) -> anyhow::Result<()> {
    if let Some(raw) = &s.raw {
        return raw.put(&s.bucket, key, s.body.clone(), s.payload).await;
    }
    let request = s
        .client
        .put_object()
        .bucket(&s.bucket)
        .key(key)
        .body(ByteStream::from(s.body.clone()));
    let sent = match s.payload {
        Payload::Signed => request.send().await,
        Payload::Unsigned => request.customize().disable_payload_signing().send().await,
    };
    sent.map_err(|e| sdk_err(&format!("put {key}"), &e))?;
    Ok(())
}

/// Reads the whole object; returns the time from `t0` to the first body chunk
/// (to the end of the response when the body is empty).
async fn get(s: &Shared, key: &str, t0: Instant) -> anyhow::Result<Duration> {
    if let Some(raw) = &s.raw {
        let (ttfb, len) = raw.get(&s.bucket, key, t0).await?;
        if len != s.size {
            bail!("get {key}: {len} bytes, expected {}", s.size);
        }
        return Ok(ttfb);
    }
    let mut out = s
        .client
        .get_object()
        .bucket(&s.bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| sdk_err(&format!("get {key}"), &e))?;
    let mut first = None;
    let mut len = 0u64;
    while let Some(chunk) = out.body.next().await {
        let chunk = chunk.with_context(|| format!("get {key}: body"))?;
        if first.is_none() {
            first = Some(t0.elapsed());
        }
        len += chunk.len() as u64;
    }
    if len != s.size {
        bail!("get {key}: {len} bytes, expected {}", s.size);
    }
    Ok(first.unwrap_or_else(|| t0.elapsed()))
}

async fn list(s: &Shared) -> anyhow::Result<()> {
    let prefix = format!("{}list/", s.prefix);
    let mut token: Option<String> = None;
    let mut count = 0usize;
    if let Some(raw) = &s.raw {
        // Bounded: a server that never stops paging fails the operation.
        let pages_max = s.keys.len() / 1000 + 2;
        for page in 0.. {
            if page == pages_max {
                bail!("list {prefix}: more than {pages_max} pages");
            }
            let (n, next) = raw.list_page(&s.bucket, &prefix, token.as_deref()).await?;
            count += n;
            match next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        if count != s.keys.len() {
            bail!("list {prefix}: {count} keys, expected {}", s.keys.len());
        }
        return Ok(());
    }
    loop {
        let page = s
            .client
            .list_objects_v2()
            .bucket(&s.bucket)
            .prefix(&prefix)
            .max_keys(1000)
            .set_continuation_token(token.take())
            .send()
            .await
            .map_err(|e| sdk_err(&format!("list {prefix}"), &e))?;
        count += page.contents().len();
        match page.next_continuation_token() {
            Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_owned()),
            _ => break,
        }
    }
    if count != s.keys.len() {
        bail!("list {prefix}: {count} keys, expected {}", s.keys.len());
    }
    Ok(())
}

async fn delete(s: &Shared, key: &str) -> anyhow::Result<()> {
    s.client
        .delete_object()
        .bucket(&s.bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| sdk_err(&format!("delete {key}"), &e))?;
    Ok(())
}
