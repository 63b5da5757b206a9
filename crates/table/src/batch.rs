//! Writes to several tables acknowledged in one round trip.
//!
//! A [`WriteBatch`] collects entries of any tables; [`WriteBatch::commit`] sends
//! each node one request with every entry it holds, which the node merges in
//! one transaction, and returns once every entry is stored on its write quorum.
//! A write that touches an object, its version and its block references thus
//! costs one round trip to the nearest replicas, not one per table.

use std::collections::BTreeMap;

use futures::stream::{FuturesUnordered, StreamExt};
use hangar_cluster::quorum::{QuorumError, SetQuorums};
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
    /// Counts the batch as a write in flight from its first entry on (the
    /// entries are placed with the layout versions live at that time).
    _in_flight: hangar_cluster::transitions::WriteGuard,
}

struct Item {
    table: &'static str,
    bytes: ByteBuf,
    /// The entry's nodes and quorum in each live layout version, and which
    /// of them stored it so far.
    progress: SetQuorums,
}

impl WriteBatch {
    /// An empty batch for the tables of `replicator`.
    pub fn new(replicator: &Replicator) -> Self {
        WriteBatch {
            replicator: replicator.clone(),
            items: Vec::new(),
            _in_flight: replicator.system().layout().begin_write(),
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
        if let Some((nodes, q)) = placement.write_sets.iter().find(|(n, q)| n.len() < *q) {
            return Err(Error::Quorum(QuorumError::too_few_nodes(*q, nodes.len())));
        }
        self.items.push(Item {
            table: S::TREE.0,
            bytes: ByteBuf::from(entry.encode()?),
            progress: SetQuorums::new(placement.write_sets),
        });
        Ok(())
    }

    /// Sends every node its entries at once; returns when each entry is on its
    /// write quorum. Nodes that answer later still get their entries.
    pub async fn commit(self) -> Result<()> {
        // Per node: its entries by table, and which items they are.
        let mut per_node: BTreeMap<NodeId, NodeShare> = BTreeMap::new();
        for (i, item) in self.items.iter().enumerate() {
            for node in &item.progress.nodes() {
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
        let mut items = self.items;
        let mut failures = Vec::new();
        let all_stored = |items: &[Item]| items.iter().all(|i| i.progress.reached());
        while !all_stored(&items) {
            let Some((node, indexes, result)) = pending.next().await else {
                break;
            };
            match result {
                Ok(()) => indexes.iter().for_each(|i| items[*i].progress.ack(node)),
                Err(e) => {
                    failures.push((node, e.into()));
                    indexes.iter().for_each(|i| items[*i].progress.fail(node));
                    if items.iter().any(|i| i.progress.lost()) {
                        break;
                    }
                }
            }
        }
        if all_stored(&items) {
            if !pending.is_empty() {
                tokio::spawn(async move { while pending.next().await.is_some() {} });
            }
            return Ok(());
        }
        let (needed, ok) = items
            .iter()
            .find(|i| !i.progress.reached())
            .map_or((0, 0), |i| i.progress.shortfall());
        Err(Error::Quorum(QuorumError {
            needed,
            ok,
            failures,
        }))
    }
}
