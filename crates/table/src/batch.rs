//! Writes to several tables acknowledged in one round trip.
//!
//! A [`WriteBatch`] collects entries of any tables; [`WriteBatch::commit`] sends
//! each node one request with every entry it holds, which the node merges in
//! one transaction, and returns once every entry is stored on its write quorum.
//! A write that touches an object, its version and its block references thus
//! costs one round trip to the nearest replicas, not one per table.

use std::collections::BTreeMap;

use futures::stream::{FuturesUnordered, StreamExt};
use hangar_cluster::NodeId;
use hangar_util::encoding::Versioned;
use serde_bytes::ByteBuf;

use crate::remote::BatchRequest;
use crate::{Entry, Error, Replicator, Result, Table, TableSchema};

/// One node's part of a batch: its entries by table, and the indexes of the
/// items they are.
type NodeShare = (BTreeMap<&'static str, Vec<ByteBuf>>, Vec<usize>);

/// Entries of several tables, written together.
pub struct WriteBatch {
    replicator: Replicator,
    items: Vec<Item>,
}

struct Item {
    table: &'static str,
    bytes: ByteBuf,
    nodes: Vec<NodeId>,
    quorum: usize,
}

impl WriteBatch {
    /// An empty batch for the tables of `replicator`.
    pub fn new(replicator: &Replicator) -> Self {
        WriteBatch {
            replicator: replicator.clone(),
            items: Vec::new(),
        }
    }

    /// Adds `entry` of `table` (a table replicated by this batch's replicator).
    pub fn add<S: TableSchema>(&mut self, table: &Table<S>, entry: &S::Entry) -> Result<()> {
        if !table.is_replicated() {
            return Err(Error::Protocol(format!(
                "table {} is not replicated: a batch cannot carry it",
                S::TREE.0
            )));
        }
        let placement = table.placement(&entry.partition_key());
        if placement.nodes.len() < placement.write_quorum {
            return Err(Error::Quorum(hangar_cluster::Error::Quorum {
                needed: placement.write_quorum,
                ok: 0,
            }));
        }
        self.items.push(Item {
            table: S::TREE.0,
            bytes: ByteBuf::from(entry.encode()?),
            nodes: placement.nodes,
            quorum: placement.write_quorum,
        });
        Ok(())
    }

    /// Sends every node its entries at once; returns when each entry is on its
    /// write quorum. Nodes that answer later still get their entries.
    pub async fn commit(self) -> Result<()> {
        // Per node: its entries by table, and which items they are.
        let mut per_node: BTreeMap<NodeId, NodeShare> = BTreeMap::new();
        for (i, item) in self.items.iter().enumerate() {
            for node in &item.nodes {
                let (tables, items) = per_node.entry(*node).or_default();
                tables
                    .entry(item.table)
                    .or_default()
                    .push(item.bytes.clone());
                items.push(i);
            }
        }
        let rpc = self.replicator.system().rpc().clone();
        let mut pending: FuturesUnordered<_> = per_node
            .into_iter()
            .map(|(node, (tables, items))| {
                let rpc = rpc.clone();
                let request = BatchRequest {
                    tables: tables
                        .into_iter()
                        .map(|(t, e)| (t.to_string(), e))
                        .collect(),
                };
                async move { (node, items, rpc.call(node, &request).await) }
            })
            .collect();
        let mut acks = vec![0usize; self.items.len()];
        // Nodes that may still answer, per item.
        let mut possible: Vec<usize> = self.items.iter().map(|i| i.nodes.len()).collect();
        let mut errors = Vec::new();
        let done = |acks: &[usize]| self.items.iter().zip(acks).all(|(i, a)| *a >= i.quorum);
        while !done(&acks) {
            let Some((node, items, result)) = pending.next().await else {
                break;
            };
            match result {
                Ok(()) => items.iter().for_each(|i| acks[*i] += 1),
                Err(e) => {
                    errors.push(format!("{node}: {e}"));
                    items.iter().for_each(|i| possible[*i] -= 1);
                    if self.items.iter().zip(&possible).any(|(i, p)| *p < i.quorum) {
                        break;
                    }
                }
            }
        }
        if done(&acks) {
            if !pending.is_empty() {
                tokio::spawn(async move { while pending.next().await.is_some() {} });
            }
            return Ok(());
        }
        let (needed, ok) = self
            .items
            .iter()
            .zip(&acks)
            .find(|(i, a)| **a < i.quorum)
            .map_or((0, 0), |(i, a)| (i.quorum, *a));
        Err(Error::Replication(hangar_cluster::quorum::QuorumError {
            needed,
            ok,
            errors: errors.join("; "),
        }))
    }
}
