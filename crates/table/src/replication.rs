//! Where a table's entries live and how many copies must answer.

use hangar_cluster::{Layout, NodeId};
use hangar_util::Hash;

/// A table's replication policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replication {
    /// On the nodes of the entry's partition (objects, versions, block
    /// references): `replication_factor` copies, write and read quorums from the
    /// layout's parameters.
    Sharded,
    /// On every storage node of the layout (buckets, keys, aliases: small
    /// tables). Writes need a majority of the nodes; reads a complementary
    /// quorum, so that a read meets every acknowledged write.
    Full,
}

/// The nodes an operation on one entry goes to, and how many must answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Nodes holding the entry.
    pub nodes: Vec<NodeId>,
    /// Answers a write needs.
    pub write_quorum: usize,
    /// Answers a read needs.
    pub read_quorum: usize,
}

impl Replication {
    /// Where the entry with partition key `pk` lives in `layout`.
    pub fn placement(self, layout: &Layout, pk: &Hash) -> Placement {
        match self {
            Replication::Sharded => {
                let params = layout.params();
                Placement {
                    nodes: layout.nodes_of(pk).to_vec(),
                    write_quorum: params.write_quorum(),
                    read_quorum: params.read_quorum(),
                }
            }
            Replication::Full => {
                let nodes = layout.all_nodes();
                let write_quorum = nodes.len() / 2 + 1;
                Placement {
                    read_quorum: (nodes.len() + 1).saturating_sub(write_quorum).max(1),
                    nodes,
                    write_quorum,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use hangar_cluster::{ReplicationParams, PARTITION_COUNT};

    use super::*;

    fn node(i: u8) -> NodeId {
        NodeId::from_public_key(&[i])
    }

    fn layout() -> Layout {
        let partitions = (0..PARTITION_COUNT)
            .map(|p| {
                let first = (p % 5) as u8;
                (0..3).map(|k| node((first + k) % 5)).collect()
            })
            .collect();
        Layout::new(3, ReplicationParams::new(3), partitions)
    }

    #[test]
    fn sharded_entries_live_on_their_partition() {
        let p = Replication::Sharded.placement(&layout(), &Hash::of(b"x"));
        assert_eq!(p.nodes.len(), 3);
        assert_eq!((p.write_quorum, p.read_quorum), (2, 2));
    }

    #[test]
    fn full_tables_live_everywhere_with_overlapping_quorums() {
        let p = Replication::Full.placement(&layout(), &Hash::of(b"x"));
        assert_eq!(p.nodes.len(), 5);
        assert_eq!((p.write_quorum, p.read_quorum), (3, 3));
        let single = Replication::Full.placement(&Layout::single_node(node(1)), &Hash::of(b"x"));
        assert_eq!((single.write_quorum, single.read_quorum), (1, 1));
    }
}
