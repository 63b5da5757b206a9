//! Reading one entry from every replica, each answer kept apart.
//!
//! A quorum read merges what a read quorum holds: enough to serve a client,
//! not to decide that something is *nowhere*. Deleting data on the word of a
//! quorum read could miss a write that reached a single replica and will
//! spread from there. [`Table::read_every_replica`] asks every node holding
//! the entry's partition in any live layout version and returns each answer
//! on its own, with the write quorums, so the caller can tell "no replica
//! has it" from "the replicas that answered do not have it".

use std::collections::BTreeMap;

use futures::stream::{FuturesUnordered, StreamExt};
use hangar_cluster::NodeId;
use hangar_net::CallOptions;
use hangar_util::encoding::Versioned;
use hangar_util::Hash;
use serde_bytes::ByteBuf;

use super::{request, Table, TableSchema, Where};
use crate::remote::{TableOp, TableReply};
use crate::Result;

/// What each replica of one entry holds.
#[derive(Clone, Debug)]
pub struct ReplicaAnswers<E> {
    /// Per live layout version, the entry's nodes and the answers a write
    /// needs among them.
    pub write_sets: Vec<(Vec<NodeId>, usize)>,
    /// Each node that answered, with its copy (`None`: it has none).
    pub answers: BTreeMap<NodeId, Option<E>>,
}

impl<E> ReplicaAnswers<E> {
    /// Whether every node of every write set answered.
    pub fn all_answered(&self) -> bool {
        self.write_sets
            .iter()
            .all(|(nodes, _)| nodes.iter().all(|n| self.answers.contains_key(n)))
    }

    /// Whether, in every live layout version, at least a write quorum of
    /// nodes answered with a copy for which `holds` is true: then every read
    /// quorum meets such a copy.
    pub fn write_quorum_where(&self, holds: impl Fn(Option<&E>) -> bool) -> bool {
        self.write_sets.iter().all(|(nodes, quorum)| {
            nodes
                .iter()
                .filter(|n| self.answers.get(n).is_some_and(|e| holds(e.as_ref())))
                .count()
                >= *quorum
        })
    }

    /// The copies that answered (nodes without one left out).
    pub fn copies(&self) -> impl Iterator<Item = &E> {
        self.answers.values().flatten()
    }
}

/// Calls of [`Table::read_every_replica`]: a replica that does not answer
/// within this long counts as not answering.
const EVERY_REPLICA_CALL: CallOptions = CallOptions {
    priority: Some(hangar_net::Priority::Background),
    timeout: std::time::Duration::from_secs(10),
};

impl<S: TableSchema> Table<S> {
    /// Asks every node holding entry (`pk`, `sk`) in any live layout version
    /// for its copy, without merging, read repair or hedging. Nodes that fail
    /// or do not answer in time are left out of the answers.
    pub async fn read_every_replica(
        &self,
        pk: &Hash,
        sk: &[u8],
    ) -> Result<ReplicaAnswers<S::Entry>> {
        let placement = self.placement(pk);
        let Where::Cluster { replicator, .. } = &self.inner.placement else {
            let mut answers = BTreeMap::new();
            for (nodes, _) in &placement.write_sets {
                for n in nodes {
                    answers.insert(*n, self.get(pk, sk)?);
                }
            }
            return Ok(ReplicaAnswers {
                write_sets: placement.write_sets,
                answers,
            });
        };
        let mut nodes: Vec<NodeId> = placement
            .write_sets
            .iter()
            .flat_map(|(n, _)| n.iter().copied())
            .collect();
        nodes.sort();
        nodes.dedup();
        let msg = request::<S>(TableOp::Get {
            pk: *pk,
            sk: ByteBuf::from(sk.to_vec()),
        });
        let rpc = replicator.system().rpc().clone();
        let mut calls: FuturesUnordered<_> = nodes
            .into_iter()
            .map(|node| {
                let (rpc, msg) = (rpc.clone(), msg.clone());
                async move {
                    let r = rpc.call_with(node, &msg, EVERY_REPLICA_CALL, None).await;
                    (node, r.map(|(reply, _)| reply))
                }
            })
            .collect();
        let mut answers = BTreeMap::new();
        while let Some((node, reply)) = calls.next().await {
            match reply {
                Ok(TableReply::Entry(bytes)) => {
                    let entry = bytes.map(|b| S::Entry::decode(&b)).transpose()?;
                    answers.insert(node, entry);
                }
                Ok(other) => {
                    tracing::debug!(%node, "unexpected table reply {other:?}");
                }
                Err(e) => {
                    tracing::debug!(%node, table = S::TREE.0, "replica did not answer: {e}");
                }
            }
        }
        Ok(ReplicaAnswers {
            write_sets: placement.write_sets,
            answers,
        })
    }
}
