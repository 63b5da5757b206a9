//! `hangar-bench layout`: how long the partition assignment takes.
//!
//! Builds a cluster of `nodes` storage nodes spread round-robin over `zones`
//! zones, with capacities drawn between 1 and 20 TB from a fixed seed, and times
//! `hangar_cluster::assignment::assign` `runs` times.

use std::time::Instant;

use anyhow::Context;
use hangar_cluster::assignment::{assign, StorageNode, ZoneRedundancy};
use hangar_cluster::NodeId;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::stats::{round3, MinMedMax};

/// Options of the `layout` subcommand.
#[derive(Debug, clap::Args)]
pub struct LayoutArgs {
    /// Storage nodes.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub nodes: u64,
    /// Zones.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub zones: u64,
    /// Replication factor.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=7))]
    pub replication_factor: u64,
    /// Timed runs.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub runs: u64,
}

#[derive(Serialize)]
struct Report {
    nodes: u64,
    zones: u64,
    replication_factor: u64,
    runs: u64,
    seconds: MinMedMax,
    usable_capacity_tb: f64,
}

/// Times the assignment and prints one JSON object.
pub fn run(args: &LayoutArgs) -> anyhow::Result<()> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let nodes: Vec<StorageNode> = (0..args.nodes)
        .map(|i| StorageNode {
            id: NodeId::from_public_key(&i.to_be_bytes()),
            zone: format!("zone-{}", i % args.zones),
            capacity: rng.gen_range(1..=20u64) * 1_000_000_000_000,
        })
        .collect();
    let rf = usize::try_from(args.replication_factor).context("replication factor")?;
    let mut times = Vec::new();
    let mut usable = 0;
    for _ in 0..args.runs {
        let t = Instant::now();
        let a = assign(&nodes, rf, ZoneRedundancy::Maximum).context("assignment")?;
        times.push(t.elapsed().as_secs_f64());
        usable = a.usable_capacity();
    }
    let report = Report {
        nodes: args.nodes,
        zones: args.zones,
        replication_factor: args.replication_factor,
        runs: args.runs,
        seconds: MinMedMax::of(&times),
        usable_capacity_tb: round3(usable as f64 / 1e12),
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
