//! `hangar-bench hash`: single-core throughput of MD5 (the S3 ETag), BLAKE3
//! (Hangar's block hash) and SHA-256 (SigV4 payload hash) over one buffer,
//! with the implementations the server uses; and, as the machine's fastest
//! MD5 to compare with, OpenSSL's (`openssl speed -evp md5`), if the
//! `openssl` command is there.
//!
//! Each hash runs on the calling thread only: BLAKE3 goes through
//! `blake3::Hasher::update`, which never uses rayon.

use std::hint::black_box;
use std::time::Instant;

use anyhow::Context;
use md5::Digest as _;
use rand::{RngCore, SeedableRng};
use serde::Serialize;

use crate::stats::MinMedMax;

/// Options of the `hash` subcommand.
#[derive(Debug, clap::Args)]
pub struct HashArgs {
    /// Size of the hashed buffer in MiB.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub size_mib: u64,
    /// Timed runs per hash function.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=20))]
    pub runs: u64,
}

#[derive(Serialize)]
struct Cpu {
    sha_ni: bool,
    avx2: bool,
    avx512f: bool,
}

#[derive(Serialize)]
struct Report {
    size_mib: u64,
    runs: u64,
    md5_mb_s: MinMedMax,
    blake3_mb_s: MinMedMax,
    sha256_mb_s: MinMedMax,
    /// OpenSSL's MD5 on 16 KiB buffers, one process, if `openssl` runs.
    openssl_md5_mb_s: Option<MinMedMax>,
    /// The server's MD5 against OpenSSL's, medians.
    md5_over_openssl: Option<f64>,
    /// CPU features that decide which code paths the hash crates pick at run time.
    cpu: Cpu,
}

/// Runs the hash benchmark and prints one JSON object.
pub fn run(args: &HashArgs) -> anyhow::Result<()> {
    let len = usize::try_from(args.size_mib * 1024 * 1024).context("buffer size")?;
    let mut buf = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(0x4841_4e47_4152).fill_bytes(&mut buf);

    let md5 = measure(&buf, args.runs, |b| {
        black_box(md5::Md5::digest(b));
    });
    let blake3 = measure(&buf, args.runs, |b| {
        let mut h = blake3::Hasher::new();
        h.update(b);
        black_box(h.finalize());
    });
    let sha256 = measure(&buf, args.runs, |b| {
        black_box(sha2::Sha256::digest(b));
    });

    let openssl: Option<Vec<f64>> = (0..args.runs).map(|_| openssl_md5_mb_s()).collect();
    let md5_mb_s = MinMedMax::of(&md5);
    let openssl_md5_mb_s = openssl.as_deref().map(MinMedMax::of);
    let report = Report {
        size_mib: args.size_mib,
        runs: args.runs,
        md5_over_openssl: openssl_md5_mb_s
            .as_ref()
            .map(|o| crate::stats::round3(md5_mb_s.median / o.median)),
        openssl_md5_mb_s,
        md5_mb_s,
        blake3_mb_s: MinMedMax::of(&blake3),
        sha256_mb_s: MinMedMax::of(&sha256),
        cpu: cpu_features(),
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// OpenSSL's MD5 throughput in MB/s over 16 KiB buffers for 2 s, from the
/// machine-readable output of `openssl speed` (`+F:<n>:md5:<bytes/s>`);
/// `None` if it does not run.
fn openssl_md5_mb_s() -> Option<f64> {
    let out = std::process::Command::new("openssl")
        .args([
            "speed", "-mr", "-seconds", "2", "-bytes", "16384", "-evp", "md5",
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with("+F:"))?;
    let bytes_per_s: f64 = line.rsplit(':').next()?.trim().parse().ok()?;
    Some(bytes_per_s / 1e6)
}

/// Throughput in MB/s (10^6 bytes) of `runs` calls of `f` over `buf`.
fn measure(buf: &[u8], runs: u64, f: impl Fn(&[u8])) -> Vec<f64> {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f(black_box(buf));
            buf.len() as f64 / t.elapsed().as_secs_f64() / 1e6
        })
        .collect()
}

#[cfg(target_arch = "x86_64")]
fn cpu_features() -> Cpu {
    Cpu {
        sha_ni: std::arch::is_x86_feature_detected!("sha"),
        avx2: std::arch::is_x86_feature_detected!("avx2"),
        avx512f: std::arch::is_x86_feature_detected!("avx512f"),
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn cpu_features() -> Cpu {
    Cpu {
        sha_ni: false,
        avx2: false,
        avx512f: false,
    }
}
