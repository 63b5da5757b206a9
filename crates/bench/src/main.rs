//! `hangar-bench`: measuring tools for Hangar.
//!
//! - `s3`: a bounded S3 load generator (put/get/list/delete) against any
//!   S3-compatible endpoint, printing throughput and latency percentiles.
//! - `fill`: fills one bucket with many small objects, measuring PUT rate,
//!   GET and LIST latency, metadata size and memory as it grows.
//! - `multipart`: one multipart upload of many parts, comparing the latency of
//!   its first and last parts.
//! - `layout`: time of the partition assignment for a random cluster.
//! - `hash`: single-core MD5 / BLAKE3 / SHA-256 throughput on this machine.
//! - `db-engines`: redb against fjall on small read-modify-write transactions and
//!   ordered range scans, with and without fsync.
//!
//! Every subcommand prints one JSON object on stdout; progress and errors go to
//! stderr.

#![allow(
    clippy::disallowed_methods,
    reason = "a benchmark measures real time and draws real randomness"
)]

mod db_engines;
mod delay_proxy;
mod fill;
mod hash;
mod layout;
mod multipart;
mod net;
mod raw;
mod s3;
mod stats;

use clap::{Parser, Subcommand};

/// Command line of `hangar-bench`.
#[derive(Debug, Parser)]
#[command(name = "hangar-bench", version, about = "Hangar benchmark tools")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// S3 load generator (put/get/list/delete) against an endpoint.
    S3(s3::S3Args),
    /// Fills one bucket with many small objects, measuring each step.
    Fill(fill::FillArgs),
    /// One multipart upload of many parts, timed part by part.
    Multipart(multipart::MultipartArgs),
    /// Time of the partition assignment for a random cluster.
    Layout(layout::LayoutArgs),
    /// Node-to-node transport: RPC round trip, priorities under bulk load and loss.
    Net(net::NetArgs),
    /// The answering node of `net --server-process` (started by it).
    #[command(hide = true)]
    NetServe(net::ServeArgs),
    /// A UDP relay that delays every datagram (geo benchmarks on one machine).
    DelayProxy(delay_proxy::DelayProxyArgs),
    /// Single-core MD5, BLAKE3 and SHA-256 throughput.
    Hash(hash::HashArgs),
    /// redb vs fjall: read-modify-write transactions and range scans.
    DbEngines(db_engines::DbEnginesArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        Command::S3(args) => s3::run(args),
        Command::Fill(args) => fill::run(args),
        Command::Multipart(args) => multipart::run(args),
        Command::Layout(args) => layout::run(args),
        Command::Net(args) => net::run(args),
        Command::NetServe(args) => net::serve_process(args),
        Command::DelayProxy(args) => delay_proxy::run(args),
        Command::Hash(args) => hash::run(args),
        Command::DbEngines(args) => db_engines::run(args),
    }
}
