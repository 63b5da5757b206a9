//! How many copies a node's reads and writes wait for: an operator's choice
//! between safety and availability (`consistency_mode` in the configuration).

use std::str::FromStr;

/// The quorums a node uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConsistencyMode {
    /// Read and write quorums that always meet: a read sees every write
    /// acknowledged before it (read-after-write).
    #[default]
    Consistent,
    /// Writes still wait for a write quorum, reads for one copy: reads work
    /// with a single replica up, but may miss a recent write.
    Degraded,
    /// Reads and writes wait for one copy: everything works with a single
    /// replica up, but an acknowledged write may exist on one node only and
    /// be lost with it.
    Dangerous,
}

impl ConsistencyMode {
    /// The read quorum to use where the layout asks for `quorum`.
    pub fn read_quorum(self, quorum: usize) -> usize {
        match self {
            ConsistencyMode::Consistent => quorum,
            ConsistencyMode::Degraded | ConsistencyMode::Dangerous => quorum.min(1),
        }
    }

    /// The write quorum to use where the layout asks for `quorum`.
    pub fn write_quorum(self, quorum: usize) -> usize {
        match self {
            ConsistencyMode::Consistent | ConsistencyMode::Degraded => quorum,
            ConsistencyMode::Dangerous => quorum.min(1),
        }
    }

    fn to_u8(self) -> u8 {
        self as u8
    }

    fn from_u8(v: u8) -> Self {
        match v {
            1 => ConsistencyMode::Degraded,
            2 => ConsistencyMode::Dangerous,
            _ => ConsistencyMode::Consistent,
        }
    }
}

impl FromStr for ConsistencyMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "consistent" => Ok(ConsistencyMode::Consistent),
            "degraded" => Ok(ConsistencyMode::Degraded),
            "dangerous" => Ok(ConsistencyMode::Dangerous),
            other => Err(format!(
                "unknown consistency mode {other:?} (consistent, degraded or dangerous)"
            )),
        }
    }
}

impl std::fmt::Display for ConsistencyMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ConsistencyMode::Consistent => "consistent",
            ConsistencyMode::Degraded => "degraded",
            ConsistencyMode::Dangerous => "dangerous",
        })
    }
}

/// A [`ConsistencyMode`] that can be changed while the node runs.
#[derive(Debug, Default)]
pub(crate) struct ModeCell(std::sync::atomic::AtomicU8);

impl ModeCell {
    pub(crate) fn get(&self) -> ConsistencyMode {
        ConsistencyMode::from_u8(self.0.load(std::sync::atomic::Ordering::Relaxed))
    }

    pub(crate) fn set(&self, mode: ConsistencyMode) {
        self.0
            .store(mode.to_u8(), std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_relax_reads_then_writes() {
        let c = ConsistencyMode::Consistent;
        assert_eq!((c.read_quorum(2), c.write_quorum(2)), (2, 2));
        let d: ConsistencyMode = "degraded".parse().expect("mode");
        assert_eq!((d.read_quorum(2), d.write_quorum(2)), (1, 2));
        let x: ConsistencyMode = "dangerous".parse().expect("mode");
        assert_eq!((x.read_quorum(2), x.write_quorum(2)), (1, 1));
        assert!("sloppy".parse::<ConsistencyMode>().is_err());
        let cell = ModeCell::default();
        assert_eq!(cell.get(), ConsistencyMode::Consistent);
        cell.set(ConsistencyMode::Dangerous);
        assert_eq!(cell.get(), ConsistencyMode::Dangerous);
    }
}
