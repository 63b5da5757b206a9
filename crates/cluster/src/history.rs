//! The layout history: the applied layout versions and the changes staged for
//! the next one. It is the whole replicated layout state: nodes exchange it and
//! [`LayoutHistory::merge`] it.
//!
//! The operator gives nodes a [`NodeRole`] (zone, capacity, tags; no capacity
//! makes a gateway) and sets [`LayoutParams`] (replication factor, zone
//! redundancy). Changes are staged ([`LayoutHistory::stage_role`],
//! [`LayoutHistory::stage_remove`], [`LayoutHistory::stage_params`]), previewed
//! ([`LayoutHistory::preview`] gives the [`LayoutDiff`] that `hangar layout show`
//! prints), then [`LayoutHistory::apply`]ed, which creates version N+1 with
//! [`crate::assignment::reassign`] from version N's assignment, or dropped with
//! [`LayoutHistory::revert`]. The computation is deterministic: the same staged
//! changes on the same history give the same version, so `show` and `apply`
//! agree. Version 0 is the empty layout of a fresh cluster: no roles, no
//! assignment; a node without a role stores nothing.
//!
//! ```
//! use hangar_cluster::{LayoutHistory, LayoutParams, NodeId, NodeRole};
//! let mut h = LayoutHistory::new(LayoutParams { replication_factor: 1, ..LayoutParams::default() })?;
//! let node = NodeId::from_public_key(b"n1");
//! h.stage_role(node, NodeRole::storage("dc1", 1 << 40), 10)?;
//! let diff = h.apply(Some(1), 11)?;
//! assert_eq!(diff.nodes[0].partitions_after, 256);
//! assert_eq!(h.routing().layout_version(), 1);
//! # Ok::<(), hangar_cluster::LayoutError>(())
//! ```
//!
//! # Merging
//!
//! [`LayoutHistory::merge`] is a CRDT merge (commutative, associative,
//! idempotent):
//!
//! - The applied versions are taken wholesale from the side whose list is
//!   greater in a total order: current version number first, then the apply's
//!   timestamp, then the content (older versions break remaining ties). Two
//!   nodes applying version N+1 concurrently therefore agree on one of them;
//!   the other is lost, with the changes it was staged from.
//! - Staged changes belong to the current version they were made against: when
//!   a side adopts a newer version, its own staged changes are dropped.
//! - Between histories with the same versions, staged changes merge node by
//!   node, last writer wins on the HLC timestamp given by the caller (ties
//!   broken by the greater value); parameters likewise.
//! - [`LayoutHistory::revert`] at `ts` records `ts`: merged histories keep the
//!   greatest, and drop every staged change not newer than it, wherever it came
//!   from. A change staged after the revert survives it.
//!
//! Every change takes a timestamp `ts` that must exceed
//! [`LayoutHistory::max_timestamp`] (else [`LayoutError::StaleTimestamp`]); a
//! caller observes that value in its HLC (`Clock::observe`) whenever it
//! receives a history, and uses `Clock::now` for changes.
//!
//! # Encoding
//!
//! [`LayoutHistory`] is [`Versioned`] (format byte + MessagePack), for the
//! layout file and the wire. Decoding checks its invariants (at least one
//! version, increasing version numbers, one entry per partition).

mod diff;
mod error;
mod merge;
mod render;
mod trackers;
mod types;

use std::collections::{BTreeMap, BTreeSet};

use hangar_util::crdt::Lww;
use hangar_util::encoding::Versioned;
use serde::{Deserialize, Serialize};

use crate::assignment::{reassign, Assignment, ZoneRedundancy};
use crate::{Layout, NodeId, PARTITION_COUNT};

pub use diff::{LayoutDiff, NodeDiff, RoleChange};
pub use error::LayoutError;
pub use render::{format_bytes, idle_node_warning};
pub use trackers::{Tracker, UpdateTrackers};
pub use types::{
    LayoutAssignment, LayoutParams, LayoutVersion, NodeRole, StagedChanges, StagedRole,
};

/// How many applied versions a history keeps (the current one included), for
/// `hangar layout history`; live versions are kept beyond it (see
/// [`LayoutHistory::live_versions`]).
pub const MAX_VERSIONS: usize = 10;

/// The replicated layout state: applied versions and staged changes. See the
/// module documentation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "HistoryRepr")]
pub struct LayoutHistory {
    /// Applied versions, oldest first; never empty. At most [`MAX_VERSIONS`],
    /// unless more are live.
    versions: Vec<LayoutVersion>,
    /// Changes staged against the last version.
    staging: Staging,
    /// Per-node progress through versions (layout transitions).
    trackers: UpdateTrackers,
}

/// The staged changes against the current version.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Staging {
    /// Timestamp of the last revert: only entries newer than it exist.
    reverted_at: u64,
    /// Role changes by node, last writer wins.
    roles: BTreeMap<NodeId, Lww<StagedRole>>,
    /// New parameters, last writer wins.
    params: Option<Lww<LayoutParams>>,
}

impl Staging {
    /// Newest timestamp recorded.
    fn max_timestamp(&self) -> u64 {
        let roles = self.roles.values().map(Lww::timestamp);
        let params = self.params.iter().map(Lww::timestamp);
        roles.chain(params).fold(self.reverted_at, u64::max)
    }
    fn is_empty(&self) -> bool {
        self.roles.is_empty() && self.params.is_none()
    }
}

impl LayoutHistory {
    /// The history of a fresh cluster: version 0, with `params` and no roles.
    pub fn new(params: LayoutParams) -> Result<Self, LayoutError> {
        validate_params(&params)?;
        Ok(LayoutHistory {
            versions: vec![LayoutVersion::empty(params)],
            staging: Staging::default(),
            trackers: UpdateTrackers::default(),
        })
    }

    /// The current (last applied) version.
    pub fn current(&self) -> &LayoutVersion {
        // `versions` is never empty: `new` and decoding guarantee it and
        // nothing removes the last element.
        &self.versions[self.versions.len() - 1]
    }

    /// The versions kept, oldest first; the last is [`Self::current`].
    pub fn versions(&self) -> &[LayoutVersion] {
        &self.versions
    }

    /// Version `version`, if still kept.
    pub fn version(&self, version: u64) -> Option<&LayoutVersion> {
        self.versions.iter().find(|v| v.version == version)
    }

    /// The staged changes.
    pub fn staged(&self) -> StagedChanges {
        StagedChanges {
            roles: self
                .staging
                .roles
                .iter()
                .map(|(node, lww)| (*node, lww.get().clone()))
                .collect(),
            params: self.staging.params.as_ref().map(|p| *p.get()),
        }
    }

    /// The newest timestamp the history holds (applies, reverts, staged
    /// changes). The next change must be newer.
    pub fn max_timestamp(&self) -> u64 {
        self.versions
            .iter()
            .map(|v| v.applied_at)
            .fold(self.staging.max_timestamp(), u64::max)
    }

    /// Stages `role` for `node` at HLC timestamp `ts`, replacing any change
    /// staged for it.
    pub fn stage_role(&mut self, node: NodeId, role: NodeRole, ts: u64) -> Result<(), LayoutError> {
        if role.zone.trim().is_empty() {
            return Err(LayoutError::EmptyZone { node });
        }
        if role.capacity == Some(0) {
            return Err(LayoutError::ZeroCapacity { node });
        }
        self.check_timestamp(ts)?;
        self.staging
            .roles
            .insert(node, Lww::new(ts, StagedRole::Set(role)));
        Ok(())
    }

    /// Stages the removal of `node` at HLC timestamp `ts`. The node must have a
    /// role, current or staged (removing a node only staged cancels it).
    pub fn stage_remove(&mut self, node: NodeId, ts: u64) -> Result<(), LayoutError> {
        let staged = matches!(
            self.staging.roles.get(&node).map(Lww::get),
            Some(StagedRole::Set(_))
        );
        if !staged && !self.current().roles.contains_key(&node) {
            return Err(LayoutError::UnknownNode { node });
        }
        self.check_timestamp(ts)?;
        self.staging
            .roles
            .insert(node, Lww::new(ts, StagedRole::Remove));
        Ok(())
    }

    /// Stages new layout parameters at HLC timestamp `ts`.
    pub fn stage_params(&mut self, params: LayoutParams, ts: u64) -> Result<(), LayoutError> {
        validate_params(&params)?;
        self.check_timestamp(ts)?;
        self.staging.params = Some(Lww::new(ts, params));
        Ok(())
    }

    /// Drops every staged change, at HLC timestamp `ts` (see the module
    /// documentation for how a revert merges).
    pub fn revert(&mut self, ts: u64) -> Result<(), LayoutError> {
        if self.staging.is_empty() {
            return Err(LayoutError::NothingStaged);
        }
        self.check_timestamp(ts)?;
        self.staging = Staging {
            reverted_at: ts,
            ..Staging::default()
        };
        Ok(())
    }

    /// What [`Self::apply`] would do now, without changing anything.
    pub fn preview(&self) -> Result<LayoutDiff, LayoutError> {
        let next = self.next_version(self.max_timestamp())?;
        Ok(LayoutDiff::between(self.current(), &next))
    }

    /// Applies the staged changes at HLC timestamp `ts`: creates version N+1,
    /// its assignment computed by [`reassign`] from version N's, and clears the
    /// staging area. With `expected_version`, refuses unless N+1 is that
    /// version (so an operator applies what they previewed). Returns the
    /// changes from version N.
    pub fn apply(
        &mut self,
        expected_version: Option<u64>,
        ts: u64,
    ) -> Result<LayoutDiff, LayoutError> {
        let next_number = self.current().version + 1;
        if let Some(expected) = expected_version {
            if expected != next_number {
                return Err(LayoutError::VersionMismatch {
                    expected,
                    next: next_number,
                });
            }
        }
        self.check_timestamp(ts)?;
        let next = self.next_version(ts)?;
        let diff = LayoutDiff::between(self.current(), &next);
        self.versions.push(next);
        // Old versions are dropped beyond MAX_VERSIONS, live ones never.
        let excess = self.versions.len().saturating_sub(MAX_VERSIONS);
        let retired = self.live_start();
        self.versions.drain(..excess.min(retired));
        self.staging = Staging::default();
        Ok(diff)
    }

    /// The layout requests are routed with: the current version's assignment.
    /// Before the first apply (version 0) no partition has nodes, so every
    /// write fails its quorum.
    pub fn routing(&self) -> Layout {
        trackers::routing_of(self.current())
    }

    /// Every node the history knows: with a role in a kept version, or staged.
    pub fn known_nodes(&self) -> BTreeSet<NodeId> {
        self.versions
            .iter()
            .flat_map(|v| v.roles.keys())
            .chain(self.staging.roles.keys())
            .copied()
            .collect()
    }

    /// The known node (see [`Self::known_nodes`]) whose hex id starts with
    /// `prefix`, as operators type it.
    pub fn find_node_by_prefix(&self, prefix: &str) -> Result<NodeId, LayoutError> {
        find_node_by_prefix(prefix, self.known_nodes())
    }

    /// Refuses a timestamp that is not newer than everything recorded.
    fn check_timestamp(&self, ts: u64) -> Result<(), LayoutError> {
        let latest = self.max_timestamp();
        if ts <= latest {
            return Err(LayoutError::StaleTimestamp { ts, latest });
        }
        Ok(())
    }

    /// The version the staged changes make, applied at `applied_at`.
    fn next_version(&self, applied_at: u64) -> Result<LayoutVersion, LayoutError> {
        let current = self.current();
        let mut roles = current.roles.clone();
        for (node, change) in &self.staging.roles {
            match change.get() {
                StagedRole::Set(role) => {
                    roles.insert(*node, role.clone());
                }
                StagedRole::Remove => {
                    roles.remove(node);
                }
            }
        }
        let params = self
            .staging
            .params
            .as_ref()
            .map_or(current.params, |p| *p.get());
        if roles == current.roles && params == current.params {
            return Err(LayoutError::NothingStaged);
        }
        let mut next = LayoutVersion {
            version: current.version + 1,
            applied_at,
            roles,
            params,
            assignment: None,
        };
        let previous: Option<Assignment> = current.assignment.clone().map(Into::into);
        let assignment = reassign(
            &next.storage_nodes(),
            params.replication_factor,
            params.zone_redundancy,
            previous.as_ref(),
        )?;
        next.assignment = Some(assignment.into());
        Ok(next)
    }
}

/// The node among `candidates` whose hex id starts with `prefix` (either
/// case). For the CLI, with the nodes it knows of (layout, membership).
pub fn find_node_by_prefix(
    prefix: &str,
    candidates: impl IntoIterator<Item = NodeId>,
) -> Result<NodeId, LayoutError> {
    let wanted = prefix.trim().to_ascii_lowercase();
    if wanted.is_empty() || !wanted.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(LayoutError::InvalidNodePrefix {
            prefix: prefix.to_string(),
        });
    }
    let matches: BTreeSet<NodeId> = candidates
        .into_iter()
        .filter(|n| n.to_hex().starts_with(&wanted))
        .collect();
    let mut iter = matches.iter();
    match (iter.next(), iter.next()) {
        (Some(node), None) => Ok(*node),
        (None, _) => Err(LayoutError::NoSuchNode {
            prefix: prefix.to_string(),
        }),
        (Some(_), Some(_)) => Err(LayoutError::AmbiguousNodePrefix {
            prefix: prefix.to_string(),
            matches: matches.into_iter().collect(),
        }),
    }
}

fn validate_params(params: &LayoutParams) -> Result<(), LayoutError> {
    let rf = params.replication_factor;
    if rf == 0 {
        return Err(LayoutError::ZeroReplicationFactor);
    }
    if let ZoneRedundancy::AtLeast(k) = params.zone_redundancy {
        if k == 0 || k > rf {
            return Err(LayoutError::InvalidZoneRedundancy {
                wanted: k,
                replication_factor: rf,
            });
        }
    }
    Ok(())
}

impl Versioned for LayoutHistory {
    const TYPE_NAME: &'static str = "LayoutHistory";
    const FORMAT_VERSION: u8 = 1;
}

/// The serialised form of [`LayoutHistory`], checked before use.
#[derive(Deserialize)]
struct HistoryRepr {
    versions: Vec<LayoutVersion>,
    staging: Staging,
    /// Absent from histories written before layout transitions existed.
    #[serde(default)]
    trackers: UpdateTrackers,
}

impl TryFrom<HistoryRepr> for LayoutHistory {
    type Error = String;

    fn try_from(repr: HistoryRepr) -> Result<Self, String> {
        if repr.versions.is_empty() {
            return Err("a layout history has at least one version".into());
        }
        if repr
            .versions
            .windows(2)
            .any(|w| w[0].version >= w[1].version)
        {
            return Err("layout versions must increase".into());
        }
        for v in &repr.versions {
            if v.params.replication_factor == 0 {
                return Err(format!(
                    "layout version {}: replication factor 0",
                    v.version
                ));
            }
            if let Some(a) = &v.assignment {
                if a.partitions.len() != PARTITION_COUNT {
                    return Err(format!(
                        "layout version {}: {} partitions instead of {PARTITION_COUNT}",
                        v.version,
                        a.partitions.len()
                    ));
                }
            }
        }
        Ok(LayoutHistory {
            versions: repr.versions,
            staging: repr.staging,
            trackers: repr.trackers,
        })
    }
}

#[cfg(test)]
mod format_fixtures;
#[cfg(test)]
mod tests;
