//! `hangar-bench multipart`: one multipart upload of many parts, timed part by part.
//!
//! Uploads `parts` parts of `part_size` bytes (one random buffer, reused) with
//! `concurrency` parts in flight, in part-number order, then completes the upload,
//! reads its size back with HEAD and deletes the object. Reports the latency of
//! the first and of the last 100 parts (does an upload slow down as it grows?),
//! the time of CompleteMultipartUpload, and the overall MB/s. On error, the upload
//! is aborted.

use std::time::Instant;

use anyhow::{bail, Context};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use bytes::Bytes;
use futures::StreamExt;
use rand::{RngCore, SeedableRng};
use serde::Serialize;

use crate::s3::{sdk_err, Target};
use crate::stats::{round3, sort_samples, Latency};

/// Parts at each end of the upload whose latencies are compared.
const WINDOW: usize = 100;

/// Options of the `multipart` subcommand.
#[derive(Debug, clap::Args)]
pub struct MultipartArgs {
    /// Where to send requests.
    #[command(flatten)]
    pub target: Target,
    /// Number of parts (at most 10,000, as in S3).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub parts: u64,
    /// Part size in bytes (S3 wants at least 5 MiB except for the last part).
    #[arg(long, default_value_t = 5 << 20)]
    pub part_size: u64,
    /// Parts in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub concurrency: u64,
}

#[derive(Serialize)]
struct Report {
    op: &'static str,
    parts: u64,
    part_size: u64,
    concurrency: u64,
    total_s: f64,
    mb_per_s: f64,
    first_parts_ms: Latency,
    last_parts_ms: Latency,
    /// Median latency of the last parts over that of the first parts.
    last_over_first_p50: f64,
    complete_ms: f64,
}

/// Runs one multipart upload and prints one JSON object.
pub fn run(args: &MultipartArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    rt.block_on(Box::pin(run_async(args)))
}

async fn run_async(args: &MultipartArgs) -> anyhow::Result<()> {
    let client = args.target.sdk_client();
    let mut body = vec![0u8; usize::try_from(args.part_size).context("part size")?];
    rand::rngs::StdRng::from_entropy().fill_bytes(&mut body);
    let body = Bytes::from(body);
    let key = format!(
        "hangar-bench/multipart/{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .context("clock before 1970")?
            .as_millis()
    );
    let created = client
        .create_multipart_upload()
        .bucket(&args.target.bucket)
        .key(&key)
        .send()
        .await
        .map_err(|e| sdk_err("create multipart upload", &e))?;
    let upload_id = created.upload_id().context("no upload id")?.to_owned();
    let outcome = upload_and_complete(&client, args, &key, &upload_id, body).await;
    if outcome.is_err() {
        // Best effort: the error that matters is the one returned.
        let _ = client
            .abort_multipart_upload()
            .bucket(&args.target.bucket)
            .key(&key)
            .upload_id(&upload_id)
            .send()
            .await;
    }
    let report = outcome?;
    client
        .delete_object()
        .bucket(&args.target.bucket)
        .key(&key)
        .send()
        .await
        .map_err(|e| sdk_err("delete", &e))?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

async fn upload_and_complete(
    client: &Client,
    args: &MultipartArgs,
    key: &str,
    upload_id: &str,
    body: Bytes,
) -> anyhow::Result<Report> {
    let t0 = Instant::now();
    let concurrency = usize::try_from(args.concurrency).context("concurrency")?;
    let parts: Vec<i32> = (1..=i32::try_from(args.parts).context("parts")?).collect();
    let results: Vec<anyhow::Result<(i32, String, f64)>> = futures::stream::iter(parts)
        .map(|n| {
            let body = body.clone();
            async move {
                let t = Instant::now();
                let out = client
                    .upload_part()
                    .bucket(&args.target.bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .part_number(n)
                    .body(ByteStream::from(body))
                    .send()
                    .await
                    .map_err(|e| sdk_err(&format!("upload part {n}"), &e))?;
                let etag = out.e_tag().context("part without ETag")?.to_owned();
                Ok((n, etag, t.elapsed().as_secs_f64() * 1000.0))
            }
        })
        .buffered(concurrency)
        .collect()
        .await;
    let mut completed = Vec::with_capacity(results.len());
    let mut latencies = Vec::with_capacity(results.len());
    for r in results {
        let (n, etag, ms) = r?;
        completed.push(CompletedPart::builder().part_number(n).e_tag(etag).build());
        latencies.push(ms);
    }
    let tc = Instant::now();
    client
        .complete_multipart_upload()
        .bucket(&args.target.bucket)
        .key(key)
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(completed))
                .build(),
        )
        .send()
        .await
        .map_err(|e| sdk_err("complete multipart upload", &e))?;
    let complete_ms = tc.elapsed().as_secs_f64() * 1000.0;
    let total_s = t0.elapsed().as_secs_f64();
    let head = client
        .head_object()
        .bucket(&args.target.bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| sdk_err("head", &e))?;
    let expected = args.parts * args.part_size;
    if head.content_length() != i64::try_from(expected).ok() {
        bail!(
            "completed object has {:?} bytes, expected {expected}",
            head.content_length()
        );
    }
    let window = WINDOW.min(latencies.len());
    let mut first = latencies[..window].to_vec();
    let mut last = latencies[latencies.len() - window..].to_vec();
    sort_samples(&mut first);
    sort_samples(&mut last);
    let first_ms = Latency::of_sorted(&first);
    let last_ms = Latency::of_sorted(&last);
    Ok(Report {
        op: "multipart",
        parts: args.parts,
        part_size: args.part_size,
        concurrency: args.concurrency,
        total_s: round3(total_s),
        mb_per_s: round3(expected as f64 / total_s / 1e6),
        last_over_first_p50: round3(last_ms.p50 / first_ms.p50.max(f64::MIN_POSITIVE)),
        first_parts_ms: first_ms,
        last_parts_ms: last_ms,
        complete_ms: round3(complete_ms),
    })
}
