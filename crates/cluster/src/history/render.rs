//! Text tables for the CLI: `hangar layout show` (a [`LayoutDiff`] or a
//! [`LayoutVersion`]) and `hangar layout history`.

use std::fmt::{self, Write as _};

use super::{
    LayoutDiff, LayoutHistory, LayoutParams, LayoutVersion, NodeRole, RoleChange, StagedChanges,
    StagedRole,
};
use crate::assignment::ZoneRedundancy;

/// `bytes` in decimal units with three significant digits: `999 B`,
/// `1.50 KB`, `12.3 GB`, `100 TB`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KB", "MB", "GB", "TB", "PB", "EB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 999.5 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    let digits = if value >= 99.95 {
        0
    } else if value >= 9.995 {
        1
    } else {
        2
    };
    format!("{value:.digits$} {}", UNITS[unit])
}

/// The warning for a storage node that offers `capacity` bytes but holds no
/// partition under partitions of `partition_size` bytes (`node`: its id as
/// shown): it stores nothing, and an operator should know why.
pub fn idle_node_warning(node: &str, capacity: u64, partition_size: u64) -> String {
    if capacity < partition_size {
        format!(
            "Warning: node {node} offers {} but holds no partition: that is less than one \
             partition ({}). Give it more capacity, or remove its role.",
            format_bytes(capacity),
            format_bytes(partition_size)
        )
    } else {
        format!(
            "Warning: node {node} offers {} but holds no partition: the replication factor \
             and zone redundancy leave none for it.",
            format_bytes(capacity)
        )
    }
}

fn zone_redundancy(z: ZoneRedundancy) -> String {
    match z {
        ZoneRedundancy::Maximum => "maximum".to_string(),
        ZoneRedundancy::AtLeast(k) => format!("at least {k}"),
    }
}

fn capacity(role: &NodeRole) -> String {
    role.capacity
        .map_or_else(|| "gateway".to_string(), format_bytes)
}

/// `before -> after`, or just the value when it does not change.
fn change(before: String, after: String) -> String {
    if before == after {
        after
    } else {
        format!("{before} -> {after}")
    }
}

fn params_lines(
    f: &mut fmt::Formatter<'_>,
    before: &LayoutParams,
    after: &LayoutParams,
) -> fmt::Result {
    writeln!(
        f,
        "Replication factor: {}",
        change(
            before.replication_factor.to_string(),
            after.replication_factor.to_string()
        )
    )?;
    writeln!(
        f,
        "Zone redundancy: {}",
        change(
            zone_redundancy(before.zone_redundancy),
            zone_redundancy(after.zone_redundancy)
        )
    )
}

/// Left-aligned columns separated by two spaces, each line indented by two.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::from(" ");
        for (w, cell) in widths.iter().zip(row) {
            let _ = write!(line, " {cell:<w$} ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

impl fmt::Display for LayoutDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Layout version {} -> {}",
            self.from_version, self.to_version
        )?;
        params_lines(f, &self.params_before, &self.params_after)?;
        writeln!(
            f,
            "Partition size: {}",
            change(
                format_bytes(self.partition_size_before),
                format_bytes(self.partition_size_after)
            )
        )?;
        writeln!(
            f,
            "Usable capacity: {}",
            change(
                format_bytes(self.usable_capacity_before),
                format_bytes(self.usable_capacity_after)
            )
        )?;
        writeln!(
            f,
            "Moves: {} partition replicas, at most {}",
            self.partitions_moved(),
            format_bytes(self.bytes_moved())
        )?;
        writeln!(f)?;
        let rows: Vec<Vec<String>> = self
            .nodes
            .iter()
            .map(|n| {
                // Added nodes show their new role, removed ones their old one.
                let role = |field: fn(&NodeRole) -> String| match (&n.role_before, &n.role_after) {
                    (Some(b), Some(a)) => change(field(b), field(a)),
                    (Some(r), None) | (None, Some(r)) => field(r),
                    (None, None) => "-".to_string(),
                };
                let zone = |r: &NodeRole| r.zone.clone();
                let tags = |r: &NodeRole| r.tags.join(",");
                vec![
                    n.node.to_string(),
                    match n.role_change() {
                        RoleChange::Added => "added",
                        RoleChange::Removed => "removed",
                        RoleChange::Changed => "changed",
                        RoleChange::Unchanged => "",
                    }
                    .to_string(),
                    role(zone),
                    role(capacity),
                    role(tags),
                    change(
                        n.partitions_before.to_string(),
                        n.partitions_after.to_string(),
                    ),
                    format!("+{} -{}", n.incoming, n.outgoing),
                    format_bytes(n.bytes_in),
                    format_bytes(n.bytes_out),
                    change(format_bytes(n.usable_before), format_bytes(n.usable_after)),
                ]
            })
            .collect();
        f.write_str(&table(
            &[
                "node",
                "role",
                "zone",
                "capacity",
                "tags",
                "partitions",
                "moves",
                "bytes in",
                "bytes out",
                "usable",
            ],
            &rows,
        ))?;
        for n in &self.nodes {
            let offered = n.role_after.as_ref().and_then(|r| r.capacity);
            if let Some(c) = offered.filter(|&c| c > 0 && n.partitions_after == 0) {
                writeln!(
                    f,
                    "{}",
                    idle_node_warning(&n.node.to_string(), c, self.partition_size_after)
                )?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for LayoutVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Layout version {} (applied at {})",
            self.version, self.applied_at
        )?;
        params_lines(f, &self.params, &self.params)?;
        writeln!(f, "Partition size: {}", format_bytes(self.partition_size()))?;
        writeln!(
            f,
            "Usable capacity: {}",
            format_bytes(self.usable_capacity())
        )?;
        writeln!(f)?;
        let size = self.partition_size();
        let rows: Vec<Vec<String>> = self
            .roles
            .iter()
            .map(|(node, role)| {
                let load = self.load(node);
                vec![
                    node.to_string(),
                    role.zone.clone(),
                    capacity(role),
                    role.tags.join(","),
                    load.to_string(),
                    format_bytes(load as u64 * size),
                ]
            })
            .collect();
        f.write_str(&table(
            &["node", "zone", "capacity", "tags", "partitions", "usable"],
            &rows,
        ))
    }
}

impl fmt::Display for StagedChanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return writeln!(f, "No staged changes.");
        }
        if let Some(p) = &self.params {
            writeln!(
                f,
                "Staged parameters: replication factor {}, zone redundancy {}",
                p.replication_factor,
                zone_redundancy(p.zone_redundancy)
            )?;
        }
        if self.roles.is_empty() {
            return Ok(());
        }
        writeln!(f, "Staged role changes:")?;
        let rows: Vec<Vec<String>> = self
            .roles
            .iter()
            .map(|(node, change)| match change {
                StagedRole::Set(role) => vec![
                    node.to_string(),
                    "set".to_string(),
                    role.zone.clone(),
                    capacity(role),
                    role.tags.join(","),
                ],
                StagedRole::Remove => vec![node.to_string(), "remove".to_string()],
            })
            .collect();
        f.write_str(&table(
            &["node", "change", "zone", "capacity", "tags"],
            &rows,
        ))
    }
}

impl LayoutHistory {
    /// The kept versions as a table, oldest first, as `hangar layout history`
    /// prints it.
    pub fn render_history(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .versions()
            .iter()
            .map(|v| {
                let gateways = v.roles.values().filter(|r| r.is_gateway()).count();
                vec![
                    v.version.to_string(),
                    v.applied_at.to_string(),
                    (v.roles.len() - gateways).to_string(),
                    gateways.to_string(),
                    v.params.replication_factor.to_string(),
                    zone_redundancy(v.params.zone_redundancy),
                    format_bytes(v.usable_capacity()),
                ]
            })
            .collect();
        table(
            &[
                "version",
                "applied at",
                "storage nodes",
                "gateways",
                "replication",
                "zone redundancy",
                "usable capacity",
            ],
            &rows,
        )
    }
}
