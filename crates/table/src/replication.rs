//! Where a table's entries live and how many copies must answer.

use hangar_cluster::{Layout, NodeId, Partition, Routing};
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
    /// For each live layout version, the nodes holding the entry and the
    /// answers a write needs among them.
    pub write_sets: Vec<(Vec<NodeId>, usize)>,
    /// The nodes reads go to (the version every node has synced).
    pub read_nodes: Vec<NodeId>,
    /// Answers a read needs.
    pub read_quorum: usize,
}

impl Replication {
    /// Where the entry with partition key `pk` lives under `routing`.
    pub fn placement(self, routing: &Routing, pk: &Hash) -> Placement {
        let write_sets = routing
            .writes
            .iter()
            .map(|layout| {
                let (nodes, write_quorum, _) = self.in_layout(layout, pk);
                (nodes, write_quorum)
            })
            .collect();
        let (read_nodes, _, read_quorum) = self.in_layout(&routing.read, pk);
        Placement {
            write_sets,
            read_nodes,
            read_quorum,
        }
    }

    /// The nodes holding `partition` in any live layout version under
    /// `routing` (anti-entropy peers), sorted.
    pub fn holders(self, routing: &Routing, partition: Partition) -> Vec<NodeId> {
        let mut nodes: Vec<NodeId> = routing
            .writes
            .iter()
            .flat_map(|l| match self {
                Replication::Sharded => l.partition_nodes(partition).to_vec(),
                Replication::Full => l.all_nodes(),
            })
            .collect();
        nodes.sort();
        nodes.dedup();
        nodes
    }

    /// Nodes, write quorum and read quorum in one layout version.
    fn in_layout(self, layout: &Layout, pk: &Hash) -> (Vec<NodeId>, usize, usize) {
        match self {
            Replication::Sharded => {
                let params = layout.params();
                (
                    layout.nodes_of(pk).to_vec(),
                    params.write_quorum(),
                    params.read_quorum(),
                )
            }
            Replication::Full => {
                let nodes = layout.all_nodes();
                let write_quorum = nodes.len() / 2 + 1;
                let read_quorum = (nodes.len() + 1).saturating_sub(write_quorum).max(1);
                (nodes, write_quorum, read_quorum)
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

    fn layout(version: u64, nodes: u8) -> Layout {
        let partitions = (0..PARTITION_COUNT)
            .map(|p| {
                let first = (p % usize::from(nodes)) as u8;
                (0..3).map(|k| node((first + k) % nodes)).collect()
            })
            .collect();
        Layout::new(version, ReplicationParams::new(3), partitions)
    }

    #[test]
    fn sharded_entries_live_on_their_partition() {
        let p = Replication::Sharded.placement(&Routing::single(layout(3, 5)), &Hash::of(b"x"));
        assert_eq!(p.write_sets.len(), 1);
        assert_eq!(p.write_sets[0].0.len(), 3);
        assert_eq!((p.write_sets[0].1, p.read_quorum), (2, 2));
        assert_eq!(p.read_nodes, p.write_sets[0].0);
    }

    #[test]
    fn full_tables_live_everywhere_with_overlapping_quorums() {
        let p = Replication::Full.placement(&Routing::single(layout(3, 5)), &Hash::of(b"x"));
        assert_eq!(p.write_sets[0].0.len(), 5);
        assert_eq!((p.write_sets[0].1, p.read_quorum), (3, 3));
        let single = Layout::single_node(node(1));
        let p = Replication::Full.placement(&Routing::single(single), &Hash::of(b"x"));
        assert_eq!((p.write_sets[0].1, p.read_quorum), (1, 1));
    }

    #[test]
    fn during_a_change_writes_reach_every_live_version_and_reads_the_synced_one() {
        let routing = Routing {
            writes: vec![layout(1, 3), layout(2, 5)],
            read: layout(1, 3),
        };
        let p = Replication::Sharded.placement(&routing, &Hash::of(b"x"));
        assert_eq!(p.write_sets.len(), 2);
        assert_eq!(p.read_nodes, p.write_sets[0].0);
    }
}
