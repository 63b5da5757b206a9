//! Quorum calls: send a request to the nodes holding a partition and return as
//! soon as enough of them answered.
//!
//! Nodes are tried in preference order: this node, then nodes of its zone, then
//! the others by increasing round-trip time; nodes known to be down come last.
//! Writes ([`Strategy::All`]) go to every node at once and return at quorum,
//! the slower replicas still receiving the request in the background. Reads
//! ([`Strategy::Hedged`]) ask only as many nodes as the quorum needs; a node
//! that fails, or does not answer within [`HEDGE_RTT_MULTIPLE`] times its usual
//! round trip (at least [`MIN_HEDGE_DELAY`]), is backed up by the next node, so
//! a silently dropped link costs milliseconds rather than a timeout.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use hangar_net::{CallOptions, Message, NodeId};
use tokio::time::Instant;

use crate::membership::Membership;

/// A node that has not answered after this many of its round trips is backed up.
pub const HEDGE_RTT_MULTIPLE: u32 = 4;
/// Shortest delay before a backup request.
pub const MIN_HEDGE_DELAY: Duration = Duration::from_millis(15);
/// Delay before backing up a node whose round trip is not known yet.
pub const UNKNOWN_RTT_HEDGE_DELAY: Duration = Duration::from_millis(200);

/// Which nodes receive the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Every node; return at quorum (writes).
    All,
    /// Only as many as the quorum needs, more if some fail or are slow (reads).
    Hedged,
}

/// Why one node gave no usable answer to a quorum call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeFailure {
    /// No connection to the node, or the connection broke: it is down or cut off.
    Unreachable(String),
    /// The node did not answer in time.
    TimedOut,
    /// The node answered with an error of its own.
    Failed(String),
}

impl std::fmt::Display for NodeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeFailure::Unreachable(why) => write!(f, "unreachable ({why})"),
            NodeFailure::TimedOut => write!(f, "timed out"),
            NodeFailure::Failed(why) => write!(f, "failed ({why})"),
        }
    }
}

impl From<hangar_net::Error> for NodeFailure {
    fn from(e: hangar_net::Error) -> Self {
        use hangar_net::Error as E;
        match e {
            E::NotConnected(_) | E::Connect { .. } | E::ConnectionLost(_) | E::Handshake(_) => {
                NodeFailure::Unreachable(e.to_string())
            }
            E::Timeout(_) => NodeFailure::TimedOut,
            other => NodeFailure::Failed(other.to_string()),
        }
    }
}

impl From<String> for NodeFailure {
    fn from(why: String) -> Self {
        NodeFailure::Failed(why)
    }
}

/// Why a quorum call failed: fewer nodes answered than needed. The one error
/// type of every quorum in Hangar (table reads and writes, block writes).
#[derive(Debug, thiserror::Error)]
#[error("quorum not reached: {ok} of {needed} needed answered{}", Causes(.failures))]
pub struct QuorumError {
    /// Answers required.
    pub needed: usize,
    /// Successful answers.
    pub ok: usize,
    /// Why each node that was asked and did not count failed. Empty when the
    /// call was not even tried: fewer nodes hold the partition than needed.
    pub failures: Vec<(NodeId, NodeFailure)>,
}

impl QuorumError {
    /// A quorum that cannot be reached from the start: only `holders` nodes
    /// can answer where `needed` must.
    pub fn too_few_nodes(needed: usize, holders: usize) -> Self {
        QuorumError {
            needed,
            ok: holders.min(needed.saturating_sub(1)),
            failures: Vec::new(),
        }
    }
}

struct Causes<'a>(&'a [(NodeId, NodeFailure)]);

impl std::fmt::Display for Causes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (node, why)) in self.0.iter().enumerate() {
            let sep = if i == 0 { ": " } else { "; " };
            write!(f, "{sep}{node} {why}")?;
        }
        Ok(())
    }
}

/// Progress of a write that needs a quorum in each of several node sets (one
/// set per live layout version).
#[derive(Clone, Debug)]
pub struct SetQuorums {
    sets: Vec<(Vec<NodeId>, usize)>,
    acked: Vec<NodeId>,
    failed: Vec<NodeId>,
}

impl SetQuorums {
    /// Progress of a write to `sets` (each a node list and its quorum).
    pub fn new(sets: Vec<(Vec<NodeId>, usize)>) -> Self {
        SetQuorums {
            sets,
            acked: Vec::new(),
            failed: Vec::new(),
        }
    }

    /// Every node of every set, once each.
    pub fn nodes(&self) -> Vec<NodeId> {
        let mut nodes: Vec<NodeId> = self
            .sets
            .iter()
            .flat_map(|(n, _)| n.iter().copied())
            .collect();
        nodes.sort();
        nodes.dedup();
        nodes
    }

    /// Records that `node` stored the write.
    pub fn ack(&mut self, node: NodeId) {
        self.acked.push(node);
    }

    /// Records that `node` failed.
    pub fn fail(&mut self, node: NodeId) {
        self.failed.push(node);
    }

    /// Whether every set has its quorum of acknowledgements.
    pub fn reached(&self) -> bool {
        self.sets
            .iter()
            .all(|(set, q)| count(set, &self.acked) >= *q)
    }

    /// Whether some set can no longer reach its quorum.
    pub fn lost(&self) -> bool {
        self.sets
            .iter()
            .any(|(set, q)| set.len() - count(set, &self.failed) < *q)
    }

    /// Takes the results of `pending` (one per node: `on_ok` gets each
    /// success) until every set has its quorum, or some set cannot have it any
    /// more. The calls still pending then go on in the background: the other
    /// nodes still receive the write.
    pub async fn collect<F, T, E>(
        &mut self,
        mut pending: FuturesUnordered<F>,
        mut on_ok: impl FnMut(NodeId, T),
    ) -> Result<(), QuorumError>
    where
        F: std::future::Future<Output = (NodeId, Result<T, E>)> + Send + 'static,
        T: Send + 'static,
        E: Into<NodeFailure> + Send + 'static,
    {
        let mut failures = Vec::new();
        while !self.reached() && !self.lost() {
            let Some((node, result)) = pending.next().await else {
                break;
            };
            match result {
                Ok(value) => {
                    self.ack(node);
                    on_ok(node, value);
                }
                Err(e) => {
                    failures.push((node, e.into()));
                    self.fail(node);
                }
            }
        }
        if self.reached() {
            if !pending.is_empty() {
                tokio::spawn(async move { while pending.next().await.is_some() {} });
            }
            return Ok(());
        }
        let (needed, ok) = self.shortfall();
        Err(QuorumError {
            needed,
            ok,
            failures,
        })
    }

    /// The quorum and acknowledgements of the first set short of its quorum
    /// (`(0, 0)` if none is).
    pub fn shortfall(&self) -> (usize, usize) {
        self.sets
            .iter()
            .map(|(set, q)| (*q, count(set, &self.acked)))
            .find(|(q, c)| c < q)
            .unwrap_or((0, 0))
    }
}

/// How many of `set` are in `among`.
fn count(set: &[NodeId], among: &[NodeId]) -> usize {
    set.iter().filter(|n| among.contains(n)).count()
}

/// Sends requests to node sets with quorums.
pub struct QuorumRpc {
    membership: Arc<Membership>,
    zones: RwLock<HashMap<NodeId, String>>,
}

impl QuorumRpc {
    /// A helper using `membership` for liveness and round-trip times.
    pub fn new(membership: Arc<Membership>) -> Self {
        QuorumRpc {
            membership,
            zones: RwLock::new(HashMap::new()),
        }
    }

    /// Sets each node's zone (from the layout).
    pub fn set_zones(&self, zones: HashMap<NodeId, String>) {
        *self
            .zones
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = zones;
    }

    /// `nodes` in preference order (see the module documentation).
    /// A node listed twice counts once.
    pub fn preference_order(&self, nodes: &[NodeId]) -> Vec<NodeId> {
        let mut nodes = nodes.to_vec();
        nodes.sort();
        nodes.dedup();
        let me = self.membership.rpc().local_id();
        let zones = self
            .zones
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let my_zone = zones.get(&me);
        let mut ordered: Vec<(bool, bool, bool, Duration, NodeId)> = nodes
            .iter()
            .map(|n| {
                let down = !self.membership.is_up(*n);
                let other_zone = my_zone.is_none() || zones.get(n) != my_zone;
                let rtt = self.membership.rtt(*n);
                (down, *n != me, other_zone, rtt.unwrap_or(Duration::MAX), *n)
            })
            .collect();
        ordered.sort();
        ordered.into_iter().map(|(.., n)| n).collect()
    }

    /// How long to wait for `node` before also asking the next one:
    /// [`HEDGE_RTT_MULTIPLE`] of its round trips, at least [`MIN_HEDGE_DELAY`]
    /// ([`UNKNOWN_RTT_HEDGE_DELAY`] while its round trip is unknown).
    pub fn hedge_delay(&self, node: NodeId) -> Duration {
        match self.membership.rtt(node) {
            Some(rtt) => (rtt * HEDGE_RTT_MULTIPLE).max(MIN_HEDGE_DELAY),
            None => UNKNOWN_RTT_HEDGE_DELAY,
        }
    }

    /// Sends `msg` at once to every node of `sets` (each a node list and its
    /// quorum) and returns the answers received when every set has its quorum
    /// of successes; the remaining nodes keep receiving it in the background.
    /// This is a write during a layout change: a quorum in every live version.
    pub async fn call_sets<M: Message + Clone>(
        &self,
        sets: &[(Vec<NodeId>, usize)],
        msg: M,
        options: CallOptions,
    ) -> Result<Vec<(NodeId, M::Response)>, QuorumError> {
        let mut progress = SetQuorums::new(sets.to_vec());
        let rpc = self.membership.rpc().clone();
        let msg = Arc::new(msg);
        let pending: FuturesUnordered<_> = progress
            .nodes()
            .into_iter()
            .map(|node| {
                let (rpc, msg) = (rpc.clone(), msg.clone());
                async move {
                    let r = rpc.call_with(node, msg.as_ref(), options, None).await;
                    (node, r.map(|(resp, _)| resp))
                }
            })
            .collect();
        let mut ok: Vec<(NodeId, M::Response)> = Vec::new();
        progress
            .collect(pending, |node, resp| ok.push((node, resp)))
            .await
            .map(|()| ok)
    }

    /// Sends `msg` to `nodes` and returns the first `quorum` answers.
    pub async fn call<M: Message + Clone>(
        &self,
        nodes: &[NodeId],
        msg: M,
        quorum: usize,
        strategy: Strategy,
        options: CallOptions,
    ) -> Result<Vec<(NodeId, M::Response)>, QuorumError> {
        let order = self.preference_order(nodes);
        let rpc = self.membership.rpc().clone();
        let msg = Arc::new(msg);
        let deadline = Instant::now() + options.timeout;
        let start_call = |node: NodeId| {
            let rpc = rpc.clone();
            let msg = msg.clone();
            async move {
                let r = rpc.call_with(node, msg.as_ref(), options, None).await;
                (node, r.map(|(resp, _)| resp))
            }
        };
        let mut pending = FuturesUnordered::new();
        let mut next = 0;
        let initial = match strategy {
            Strategy::All => order.len(),
            Strategy::Hedged => quorum.min(order.len()),
        };
        let mut hedges: Vec<(Instant, NodeId)> = Vec::new();
        for node in &order[..initial] {
            pending.push(start_call(*node));
            hedges.push((Instant::now() + self.hedge_delay(*node), *node));
        }
        next += initial;
        let mut ok = Vec::new();
        let mut failures: Vec<(NodeId, NodeFailure)> = Vec::new();
        while ok.len() < quorum {
            if pending.is_empty() && next >= order.len() {
                break;
            }
            let hedge_at = hedges.iter().map(|(t, _)| *t).min();
            let sleep_until = hedge_at.unwrap_or(deadline).min(deadline);
            tokio::select! {
                Some((node, result)) = pending.next(), if !pending.is_empty() => {
                    hedges.retain(|(_, n)| *n != node);
                    match result {
                        Ok(resp) => ok.push((node, resp)),
                        Err(e) => {
                            failures.push((node, e.into()));
                            if next < order.len() {
                                pending.push(start_call(order[next]));
                                hedges.push((Instant::now() + self.hedge_delay(order[next]), order[next]));
                                next += 1;
                            }
                        }
                    }
                }
                () = tokio::time::sleep_until(sleep_until) => {
                    if Instant::now() >= deadline {
                        // Every node asked that neither answered nor failed.
                        for node in &order[..next] {
                            let answered = ok.iter().any(|(n, _)| n == node)
                                || failures.iter().any(|(n, _)| n == node);
                            if !answered {
                                failures.push((*node, NodeFailure::TimedOut));
                            }
                        }
                        break;
                    }
                    // The slowest preferred node gets a backup.
                    hedges.retain(|(t, _)| *t > Instant::now());
                    if next < order.len() {
                        pending.push(start_call(order[next]));
                        hedges.push((Instant::now() + self.hedge_delay(order[next]), order[next]));
                        next += 1;
                    }
                }
            }
        }
        if ok.len() >= quorum {
            if !pending.is_empty() {
                // Writes keep reaching the remaining replicas.
                if strategy == Strategy::All {
                    tokio::spawn(async move { while pending.next().await.is_some() {} });
                }
            }
            return Ok(ok);
        }
        Err(QuorumError {
            needed: quorum,
            ok: ok.len(),
            failures,
        })
    }
}

#[cfg(test)]
mod tests;
