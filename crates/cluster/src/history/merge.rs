//! The CRDT merge of layout histories (rules in the module documentation of
//! [`crate::history`]).

use std::cmp::Ordering;

use hangar_util::crdt::Crdt;

use super::{LayoutHistory, LayoutVersion, Staging};

impl LayoutHistory {
    /// Merges `other` into `self`; true if `self` changed. Commutative,
    /// associative and idempotent.
    pub fn merge(&mut self, other: &LayoutHistory) -> bool {
        let changed = match compare_applied(&self.versions, &other.versions) {
            Ordering::Less => {
                let trackers = std::mem::take(&mut self.trackers);
                *self = other.clone();
                self.trackers.merge_from(&trackers);
                true
            }
            Ordering::Greater => false,
            Ordering::Equal => self.staging.merge_from(&other.staging),
        };
        // Trackers merge whichever versions win: each counter only grows.
        self.trackers.merge_from(&other.trackers) || changed
    }
}

impl Crdt for LayoutHistory {
    fn merge(&mut self, other: &Self) {
        LayoutHistory::merge(self, other);
    }
}

/// The total order on applied version lists: newest version first (number,
/// apply timestamp, content), then the older ones.
fn compare_applied(a: &[LayoutVersion], b: &[LayoutVersion]) -> Ordering {
    a.iter().rev().cmp(b.iter().rev())
}

impl Staging {
    /// Merges staging areas of the same version; true if `self` changed.
    fn merge_from(&mut self, other: &Staging) -> bool {
        let before = self.clone();
        self.reverted_at = self.reverted_at.max(other.reverted_at);
        for (node, change) in &other.roles {
            match self.roles.get_mut(node) {
                Some(mine) => mine.merge(change),
                None => {
                    self.roles.insert(*node, change.clone());
                }
            }
        }
        match (&mut self.params, &other.params) {
            (Some(mine), Some(theirs)) => mine.merge(theirs),
            (None, Some(theirs)) => self.params = Some(theirs.clone()),
            (_, None) => {}
        }
        self.drop_reverted();
        *self != before
    }

    /// Drops the entries a revert made void: those not newer than it.
    fn drop_reverted(&mut self) {
        let cutoff = self.reverted_at;
        self.roles.retain(|_, change| change.timestamp() > cutoff);
        if self
            .params
            .as_ref()
            .is_some_and(|p| p.timestamp() <= cutoff)
        {
            self.params = None;
        }
    }
}
