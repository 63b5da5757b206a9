//! `hangar-bench db-engines`: redb against fjall on the metadata access pattern.
//!
//! Each engine is opened twice in a fresh directory under `--dir` (default
//! `/tmp`), once committing with an fsync and once without, and preloaded with
//! `--keys` records of 200 bytes under sorted keys (`o/bench/0000000042`). Then:
//!
//! - `rmw`: `--threads` threads each run small read-modify-write transactions
//!   that read 3–6 random records and write them back changed (a counter in the
//!   value is bumped). redb: one write transaction per operation (redb runs one
//!   writer at a time). fjall: one optimistic (serialisable) transaction per
//!   operation, retried on conflict; retries are reported.
//! - `scan`: the same threads read ordered ranges of `--scan-len` records from
//!   a random start key (one read transaction / snapshot per scan). Scans do not
//!   write, so their `durability` only names how the data was written.
//!
//! Durability: redb `Durability::Immediate` (fsync per commit) vs
//! `Durability::None` (nothing reaches the disk until a later durable commit; a
//! crash of the process rolls back to the last durable commit); fjall
//! `PersistMode::SyncAll` (fsync of the journal per commit) vs
//! `PersistMode::Buffer` (journal written to the OS, survives a process crash
//! but not a power loss).
//!
//! fjall's preload is flushed from its memtable to a disk table before the timed
//! runs (unless `--fjall-no-flush`), as most records of a real metadata store
//! are; the records rewritten by `rmw` then sit in the memtable.
//!
//! Every case is run `--runs` times for `--run-secs` each; the report gives
//! operations per second as min/median/max.

mod fjall_engine;
mod redb_engine;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::stats::{round3, MinMedMax};

/// Value size of a preloaded record.
const VALUE_LEN: usize = 200;
/// Fewest and most records one read-modify-write transaction touches.
const RMW_KEYS: std::ops::RangeInclusive<usize> = 3..=6;
/// Cache given to both engines (the server's default metadata cache is 32 MiB).
const CACHE_BYTES: usize = 32 * 1024 * 1024;
/// Operation cap per run, so a very fast case still ends early.
const OPS_PER_RUN_MAX: u64 = 10_000_000;

/// Options of the `db-engines` subcommand.
#[derive(Debug, clap::Args)]
pub struct DbEnginesArgs {
    /// Worker threads per case.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub threads: u64,
    /// Records preloaded into each database.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(2_000..=10_000_000))]
    pub keys: u64,
    /// Records read by one range scan.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub scan_len: u64,
    /// Length of one run in seconds (each case is `runs` runs).
    #[arg(long, default_value_t = 1.5)]
    pub run_secs: f64,
    /// Runs per case.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=20))]
    pub runs: u64,
    /// Directory in which the temporary databases are created.
    #[arg(long, default_value = "/tmp")]
    pub dir: PathBuf,
    /// Workloads to run, in this order, on each database.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Workload::Rmw, Workload::Scan])]
    pub workloads: Vec<Workload>,
    /// Leave fjall's preloaded records in its memtable instead of flushing them
    /// to a disk table before the timed runs.
    #[arg(long)]
    pub fjall_no_flush: bool,
    /// Engines to compare.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [EngineKind::Redb, EngineKind::Fjall])]
    pub engines: Vec<EngineKind>,
}

/// An engine under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// redb (copy-on-write B-tree, one writer at a time).
    Redb,
    /// fjall (LSM tree, optimistic transactions).
    Fjall,
}

/// The operations both engines implement for this benchmark.
trait Engine: Sync {
    /// One transaction reading and rewriting the records `ids`; returns how many
    /// times it had to be retried after a conflict.
    fn rmw(&self, ids: &[u64]) -> anyhow::Result<u64>;
    /// Reads `len` records in key order from record `start`; returns how many it read.
    fn scan(&self, start: u64, len: usize) -> anyhow::Result<usize>;
}

/// A workload of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// Small read-modify-write transactions.
    Rmw,
    /// Ordered range scans.
    Scan,
}

#[derive(Serialize)]
struct Case {
    engine: EngineKind,
    workload: Workload,
    /// `fsync`: every commit is synced; `none`: commits are not synced.
    durability: &'static str,
    ops_per_s: MinMedMax,
    runs_ops_per_s: Vec<f64>,
    /// Optimistic-transaction retries over all runs (always 0 for redb).
    #[serde(skip_serializing_if = "Option::is_none")]
    conflict_retries: Option<u64>,
}

#[derive(Serialize)]
struct Report {
    threads: u64,
    keys: u64,
    value_len: usize,
    rmw_keys_per_tx: &'static str,
    scan_len: u64,
    run_secs: f64,
    runs: u64,
    cache_bytes: usize,
    fjall_preload_flushed: bool,
    dir: PathBuf,
    cases: Vec<Case>,
}

/// Key of record `i`: fixed width, so key order is numeric order.
fn key(i: u64) -> Vec<u8> {
    format!("o/bench/{i:010}").into_bytes()
}

/// A preloaded value: an 8-byte counter followed by filler.
fn initial_value() -> Vec<u8> {
    vec![0x5a; VALUE_LEN]
}

/// The "modify" of read-modify-write: bumps the counter in the first 8 bytes.
fn bump(value: &mut Vec<u8>) {
    if value.len() < 8 {
        value.resize(8, 0);
    }
    let mut counter = [0u8; 8];
    counter.copy_from_slice(&value[..8]);
    let next = u64::from_le_bytes(counter).wrapping_add(1);
    value[..8].copy_from_slice(&next.to_le_bytes());
}

/// Runs every case and prints one JSON object.
pub fn run(args: &DbEnginesArgs) -> anyhow::Result<()> {
    if !(0.1..=5.0).contains(&args.run_secs) {
        return Err(anyhow!("--run-secs must be within 0.1..=5"));
    }
    let mut cases = Vec::new();
    for &kind in &args.engines {
        for fsync in [true, false] {
            let dir = tempfile::Builder::new()
                .prefix("hangar-db-engines-")
                .tempdir_in(&args.dir)
                .with_context(|| format!("cannot create a directory in {}", args.dir.display()))?;
            let t = Instant::now();
            let engine: Box<dyn Engine> = match kind {
                EngineKind::Redb => {
                    Box::new(redb_engine::RedbEngine::open(dir.path(), args.keys, fsync)?)
                }
                EngineKind::Fjall => Box::new(fjall_engine::FjallEngine::open(
                    dir.path(),
                    args.keys,
                    fsync,
                    !args.fjall_no_flush,
                )?),
            };
            eprintln!(
                "hangar-bench: {kind:?} (fsync: {fsync}) preloaded {} records in {:.2} s",
                args.keys,
                t.elapsed().as_secs_f64()
            );
            for &workload in &args.workloads {
                let mut rates = Vec::new();
                let mut retries = 0;
                for _ in 0..args.runs {
                    let (rate, r) = run_once(engine.as_ref(), workload, args)?;
                    rates.push(round3(rate));
                    retries += r;
                }
                cases.push(Case {
                    engine: kind,
                    workload,
                    durability: if fsync { "fsync" } else { "none" },
                    ops_per_s: MinMedMax::of(&rates),
                    runs_ops_per_s: rates,
                    conflict_retries: matches!(workload, Workload::Rmw).then_some(retries),
                });
            }
            drop(engine);
            dir.close()
                .context("cannot remove the temporary database")?;
        }
    }
    let report = Report {
        threads: args.threads,
        keys: args.keys,
        value_len: VALUE_LEN,
        rmw_keys_per_tx: "3..=6",
        scan_len: args.scan_len,
        run_secs: args.run_secs,
        runs: args.runs,
        cache_bytes: CACHE_BYTES,
        fjall_preload_flushed: !args.fjall_no_flush,
        dir: args.dir.clone(),
        cases,
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// One timed run: returns operations per second and conflict retries.
fn run_once(
    engine: &dyn Engine,
    workload: Workload,
    args: &DbEnginesArgs,
) -> anyhow::Result<(f64, u64)> {
    let deadline = Instant::now() + Duration::from_secs_f64(args.run_secs);
    let ops = AtomicU64::new(0);
    let retries = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let scan_len = usize::try_from(args.scan_len).context("scan length")?;
    let start = Instant::now();
    let results: Vec<anyhow::Result<()>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..args.threads)
            .map(|t| {
                let (ops, retries, failed) = (&ops, &retries, &failed);
                s.spawn(move || -> anyhow::Result<()> {
                    let mut rng = rand::rngs::StdRng::seed_from_u64(t);
                    let mut ids = Vec::with_capacity(*RMW_KEYS.end());
                    while Instant::now() < deadline
                        && !failed.load(Ordering::Relaxed)
                        && ops.load(Ordering::Relaxed) < OPS_PER_RUN_MAX
                    {
                        let r = match workload {
                            Workload::Rmw => {
                                ids.clear();
                                let n = rng.gen_range(RMW_KEYS);
                                ids.extend((0..n).map(|_| rng.gen_range(0..args.keys)));
                                ids.sort_unstable();
                                ids.dedup();
                                engine.rmw(&ids).map(|r| {
                                    retries.fetch_add(r, Ordering::Relaxed);
                                })
                            }
                            Workload::Scan => {
                                let first =
                                    rng.gen_range(0..=args.keys.saturating_sub(args.scan_len));
                                engine.scan(first, scan_len).and_then(|n| {
                                    if n == scan_len {
                                        Ok(())
                                    } else {
                                        Err(anyhow!("scan read {n} records, expected {scan_len}"))
                                    }
                                })
                            }
                        };
                        if let Err(e) = r {
                            failed.store(true, Ordering::Relaxed);
                            return Err(e);
                        }
                        ops.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow!("benchmark thread panicked"))?)
            .collect()
    });
    let elapsed = start.elapsed().as_secs_f64();
    results.into_iter().collect::<anyhow::Result<()>>()?;
    Ok((
        ops.load(Ordering::Relaxed) as f64 / elapsed,
        retries.load(Ordering::Relaxed),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_numerically() {
        assert!(key(9) < key(10));
        assert!(key(99_999) < key(100_000));
    }

    #[test]
    fn bump_counts() {
        let mut v = initial_value();
        bump(&mut v);
        bump(&mut v);
        assert_eq!(
            u64::from_le_bytes(v[..8].try_into().expect("8 bytes")),
            0x5a5a_5a5a_5a5a_5a5c
        );
        assert_eq!(v.len(), VALUE_LEN);
    }

    fn exercise(engine: &dyn Engine) {
        assert_eq!(engine.rmw(&[1, 5, 9]).expect("rmw"), 0);
        assert_eq!(engine.scan(0, 1000).expect("scan"), 1000);
        assert_eq!(engine.scan(1500, 1000).expect("scan at the end"), 500);
    }

    #[test]
    fn redb_engine_works() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = redb_engine::RedbEngine::open(dir.path(), 2000, false).expect("open");
        exercise(&e);
    }

    #[test]
    fn fjall_engine_works() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = fjall_engine::FjallEngine::open(dir.path(), 2000, false, true).expect("open");
        exercise(&e);
    }
}
