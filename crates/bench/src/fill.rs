//! `hangar-bench fill`: fills one bucket with many small objects and reports,
//! step by step, how the store copes as it grows.
//!
//! `concurrency` tasks PUT `objects` objects of `size` bytes (one random
//! buffer, reused) with the lean client. Keys are the hex of a hash of the
//! object's number (`--keys random`, the default: inserts land all over the
//! key space, as content-addressed caches write them) or the number itself,
//! zero-padded (`--keys sequential`: every insert at the end). After every
//! `step` objects the load pauses and the step is measured:
//! - the PUT rate of the step (objects per second);
//! - GET latency: `probes` GETs of random objects already written, one at a
//!   time;
//! - LIST latency: `probes` ListObjectsV2 pages of up to 1,000 keys under a
//!   random two-character prefix (random keys) or from a random number on
//!   (sequential keys), one at a time;
//! - the size on disk of `--metadata-dir`, and the resident memory of
//!   `--server-pid` (every pid given, summed: a cluster on one machine).
//!
//! One JSON line per step goes to stderr as it is measured; stdout gets one
//! JSON object: every step and the rate of the last step over the first.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use bytes::Bytes;
use rand::{Rng, RngCore, SeedableRng};
use serde::Serialize;

use crate::raw::RawClient;
use crate::s3::{Payload, Target};
use crate::stats::{round3, sort_samples, Latency};

/// Most objects one run writes.
const OBJECTS_MAX: u64 = 100_000_000;

/// How keys are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyOrder {
    /// The hex of a hash of the object's number: inserts all over the key space.
    Random,
    /// The object's number, zero-padded: every insert after the last.
    Sequential,
}

/// Options of the `fill` subcommand.
#[derive(Debug, clap::Args)]
pub struct FillArgs {
    /// Where to send requests.
    #[command(flatten)]
    pub target: Target,
    /// Objects to write.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=OBJECTS_MAX))]
    pub objects: u64,
    /// Objects per measured step.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=OBJECTS_MAX))]
    pub step: u64,
    /// Object size in bytes.
    #[arg(long, default_value_t = 256)]
    pub size: u64,
    /// PUTs in flight at once.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub concurrency: u64,
    /// Key naming.
    #[arg(long, value_enum, default_value_t = KeyOrder::Random)]
    pub keys: KeyOrder,
    /// Key prefix, before the key's name.
    #[arg(long, default_value = "fill/")]
    pub prefix: String,
    /// GETs and LIST pages measured after each step.
    #[arg(long, default_value_t = 200)]
    pub probes: u64,
    /// Metadata directories whose size on disk is reported (repeat for several nodes).
    #[arg(long)]
    pub metadata_dir: Vec<PathBuf>,
    /// Server processes whose resident memory is reported, summed (repeat for several nodes).
    #[arg(long)]
    pub server_pid: Vec<u32>,
}

/// What one step measured.
#[derive(Debug, Serialize)]
struct Step {
    /// Objects in the bucket at the end of the step.
    objects: u64,
    /// PUTs per second during the step.
    put_per_s: f64,
    /// PUT errors during the step.
    errors: u64,
    /// GET latency after the step.
    get_ms: Latency,
    /// Latency of one LIST page after the step.
    list_page_ms: Latency,
    /// Keys per LIST page, on average.
    list_page_keys: f64,
    /// Size on disk of the metadata directories, MiB.
    metadata_mib: Option<f64>,
    /// Resident memory of the server processes, MiB.
    rss_mib: Option<f64>,
}

#[derive(Serialize)]
struct Report<'a> {
    objects: u64,
    size: u64,
    concurrency: u64,
    keys: KeyOrder,
    steps: &'a [Step],
    /// PUT rate of the last step over the first.
    last_over_first: f64,
}

/// Runs the fill and prints the report.
pub fn run(args: &FillArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    rt.block_on(Box::pin(run_async(args)))
}

/// The name of object `n`.
fn key_of(prefix: &str, order: KeyOrder, n: u64) -> String {
    match order {
        KeyOrder::Random => {
            let h = blake3::hash(&n.to_le_bytes());
            format!("{prefix}{}", &h.to_hex()[..24])
        }
        KeyOrder::Sequential => format!("{prefix}{n:012}"),
    }
}

async fn run_async(args: &FillArgs) -> anyhow::Result<()> {
    let client = Arc::new(args.target.raw_client());
    let size = usize::try_from(args.size).context("object size")?;
    let mut body = vec![0u8; size];
    rand::rngs::StdRng::from_entropy().fill_bytes(&mut body);
    let body = Bytes::from(body);
    let mut steps = Vec::new();
    let mut written = 0u64;
    while written < args.objects {
        let end = (written + args.step).min(args.objects);
        let t0 = Instant::now();
        let errors = put_range(args, &client, &body, written, end).await?;
        let secs = t0.elapsed().as_secs_f64();
        let get_ms = probe_gets(args, &client, end).await?;
        let (list_page_ms, list_page_keys) = probe_lists(args, &client, end).await?;
        let step = Step {
            objects: end,
            put_per_s: round3((end - written) as f64 / secs),
            errors,
            get_ms,
            list_page_ms,
            list_page_keys,
            metadata_mib: disk_usage(&args.metadata_dir).map(mib),
            rss_mib: rss(&args.server_pid).map(mib),
        };
        eprintln!("{}", serde_json::to_string(&step)?);
        steps.push(step);
        written = end;
    }
    let rate = |s: Option<&Step>| s.map_or(0.0, |s| s.put_per_s);
    let first = rate(steps.first());
    let report = Report {
        objects: args.objects,
        size: args.size,
        concurrency: args.concurrency,
        keys: args.keys,
        steps: &steps,
        last_over_first: if first > 0.0 {
            round3(rate(steps.last()) / first)
        } else {
            0.0
        },
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// PUTs objects `from..to`; returns the failed ones (each retried once
/// before it counts).
async fn put_range(
    args: &FillArgs,
    client: &Arc<RawClient>,
    body: &Bytes,
    from: u64,
    to: u64,
) -> anyhow::Result<u64> {
    let next = Arc::new(AtomicU64::new(from));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let (client, body, next, errors) =
            (client.clone(), body.clone(), next.clone(), errors.clone());
        let (bucket, prefix, order) = (args.target.bucket.clone(), args.prefix.clone(), args.keys);
        tasks.spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= to {
                    break;
                }
                let key = key_of(&prefix, order, n);
                let mut ok = false;
                for _ in 0..2 {
                    let put = client.put(&bucket, &key, body.clone(), Payload::Unsigned);
                    if put.await.is_ok() {
                        ok = true;
                        break;
                    }
                }
                if !ok {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.context("a PUT task")?;
    }
    let errors = errors.load(Ordering::Relaxed);
    if errors > (to - from) / 100 {
        bail!("{errors} of {} PUTs failed", to - from);
    }
    Ok(errors)
}

/// Latency of `probes` GETs of random objects among the first `written`.
async fn probe_gets(args: &FillArgs, client: &RawClient, written: u64) -> anyhow::Result<Latency> {
    let mut rng = rand::rngs::StdRng::from_entropy();
    let mut ms = Vec::new();
    for _ in 0..args.probes {
        let key = key_of(&args.prefix, args.keys, rng.gen_range(0..written));
        let t0 = Instant::now();
        let (_, len) = client.get(&args.target.bucket, &key, t0).await?;
        ms.push(t0.elapsed().as_secs_f64() * 1e3);
        if len != args.size {
            bail!("get {key}: {len} bytes instead of {}", args.size);
        }
    }
    sort_samples(&mut ms);
    Ok(Latency::of_sorted(&ms))
}

/// Latency of `probes` LIST pages at random places, and the mean number of
/// keys per page.
async fn probe_lists(
    args: &FillArgs,
    client: &RawClient,
    written: u64,
) -> anyhow::Result<(Latency, f64)> {
    let mut rng = rand::rngs::StdRng::from_entropy();
    let mut ms = Vec::new();
    let mut keys = 0usize;
    for _ in 0..args.probes {
        let prefix = match args.keys {
            KeyOrder::Random => format!("{}{:02x}", args.prefix, rng.gen::<u8>()),
            // Numbers sharing all but their last three digits: a full page
            // where there are that many objects.
            KeyOrder::Sequential => {
                let n = rng.gen_range(0..written);
                let name = key_of(&args.prefix, args.keys, n);
                name[..name.len() - 3].to_string()
            }
        };
        let t0 = Instant::now();
        let (n, _) = client.list_page(&args.target.bucket, &prefix, None).await?;
        ms.push(t0.elapsed().as_secs_f64() * 1e3);
        keys += n;
    }
    sort_samples(&mut ms);
    let mean = keys as f64 / args.probes.max(1) as f64;
    Ok((Latency::of_sorted(&ms), round3(mean)))
}

fn mib(bytes: u64) -> f64 {
    round3(bytes as f64 / f64::from(1u32 << 20))
}

/// Bytes on disk under `dirs` (allocated blocks, as `du` counts), if any.
fn disk_usage(dirs: &[PathBuf]) -> Option<u64> {
    fn walk(dir: &Path) -> u64 {
        use std::os::unix::fs::MetadataExt;
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        entries
            .filter_map(Result::ok)
            .map(|e| match e.metadata() {
                Ok(m) if m.is_dir() => walk(&e.path()),
                Ok(m) => m.blocks() * 512,
                Err(_) => 0,
            })
            .sum()
    }
    (!dirs.is_empty()).then(|| dirs.iter().map(|d| walk(d)).sum())
}

/// Resident memory of `pids`, summed, if any.
fn rss(pids: &[u32]) -> Option<u64> {
    let one = |pid: &u32| -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    };
    (!pids.is_empty()).then(|| pids.iter().filter_map(one).sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_ordered_as_asked() {
        let random: std::collections::BTreeSet<String> = (0..1000)
            .map(|n| key_of("p/", KeyOrder::Random, n))
            .collect();
        assert_eq!(random.len(), 1000);
        assert_eq!(key_of("p/", KeyOrder::Sequential, 42), "p/000000000042");
        assert!(key_of("", KeyOrder::Sequential, 9) < key_of("", KeyOrder::Sequential, 10));
    }
}
