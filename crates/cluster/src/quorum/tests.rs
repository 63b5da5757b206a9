use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hangar_net::memory::{Link, LinkState, MemoryNetwork};
use hangar_net::{CallOptions, Message, NodeId, NodeKey, Priority, Rpc, RpcSecret};
use hangar_util::clock::Clock;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::*;
use crate::membership::{Membership, MembershipConfig};

#[derive(Clone, Serialize, Deserialize)]
struct Get;
impl Message for Get {
    const ENDPOINT: &'static str = "test/get";
    const PRIORITY: Priority = Priority::Metadata;
    type Response = NodeId;
}

struct Cluster {
    net: MemoryNetwork,
    ids: Vec<NodeId>,
    members: Vec<Arc<Membership>>,
}

/// `n` nodes, fully connected; node i's link to node j has latency `lat(i, j)`.
async fn cluster(n: usize, lat: impl Fn(usize, usize) -> u64) -> Cluster {
    let net = MemoryNetwork::new();
    let secret = RpcSecret::generate();
    let ids: Vec<NodeId> = (0..n)
        .map(|_| NodeKey::generate().expect("key").id())
        .collect();
    for i in 0..n {
        for j in i + 1..n {
            net.set_link(
                ids[i],
                ids[j],
                Link::with_latency(Duration::from_millis(lat(i, j))),
            );
        }
    }
    let mut members = Vec::new();
    for id in &ids {
        let rpc = Rpc::new(net.transport(*id, &secret), Clock::system());
        let me = *id;
        rpc.register(move |_from, _: Get| async move { Ok(me) });
        let m = Membership::new(
            rpc,
            MembershipConfig {
                ping_interval: Duration::from_millis(200),
                ..MembershipConfig::default()
            },
            None,
        );
        m.start();
        members.push(m);
    }
    for i in 0..n {
        for j in 0..n {
            if i != j {
                let addr = members[j].rpc().local_addr();
                members[i].connect(ids[j], addr).await.expect("connect");
            }
        }
    }
    // Let pings measure round trips.
    tokio::time::sleep(Duration::from_secs(2)).await;
    Cluster { net, ids, members }
}

#[tokio::test(start_paused = true)]
async fn preference_is_local_then_zone_then_rtt() {
    // Node 0's links: 1 → 40 ms, 2 → 5 ms, 3 → 20 ms.
    let lat = [[0, 40, 5, 20], [40, 0, 1, 1], [5, 1, 0, 1], [20, 1, 1, 0]];
    let c = cluster(4, |i, j| lat[i][j]).await;
    let q = QuorumRpc::new(c.members[0].clone());
    let ids = &c.ids;
    assert_eq!(
        q.preference_order(&[ids[1], ids[3], ids[2], ids[0]]),
        vec![ids[0], ids[2], ids[3], ids[1]]
    );
    // Same zone beats a lower round trip.
    q.set_zones(HashMap::from([
        (ids[0], "paris".to_string()),
        (ids[1], "paris".to_string()),
        (ids[2], "lyon".to_string()),
        (ids[3], "lyon".to_string()),
    ]));
    assert_eq!(
        q.preference_order(&[ids[1], ids[2], ids[3]]),
        vec![ids[1], ids[2], ids[3]]
    );
    // Down nodes come last.
    c.net.set_link(
        ids[0],
        ids[1],
        Link {
            state: LinkState::Down,
            ..Link::default()
        },
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        q.preference_order(&[ids[1], ids[2], ids[3]]),
        vec![ids[2], ids[3], ids[1]]
    );
}

#[tokio::test(start_paused = true)]
async fn a_silent_preferred_node_costs_a_hedge_delay_not_a_timeout() {
    let c = cluster(3, |_, _| 10).await;
    let q = QuorumRpc::new(c.members[0].clone());
    let ids = &c.ids;
    let options = CallOptions {
        timeout: Duration::from_secs(10),
        ..CallOptions::default()
    };
    // Reads need 2 of 3: node 0 (local) and the best other. Make that one silent.
    let order = q.preference_order(&ids[1..]);
    c.net.set_link(
        ids[0],
        order[0],
        Link {
            state: LinkState::Silent,
            ..Link::with_latency(Duration::from_millis(10))
        },
    );
    let start = Instant::now();
    let answers = q
        .call(ids, Get, 2, Strategy::Hedged, options)
        .await
        .expect("quorum");
    let took = start.elapsed();
    let who: Vec<NodeId> = answers.iter().map(|(n, _)| *n).collect();
    assert!(who.contains(&ids[0]) && who.contains(&order[1]), "{who:?}");
    // RTT 20 ms: the backup is sent after 4 RTT and answers one RTT later.
    assert!(took < Duration::from_millis(150), "{took:?}");
}

#[tokio::test(start_paused = true)]
async fn writes_reach_every_node_and_fail_without_quorum() {
    let c = cluster(3, |_, _| 5).await;
    let q = QuorumRpc::new(c.members[0].clone());
    let ids = &c.ids;
    let options = CallOptions {
        timeout: Duration::from_secs(2),
        ..CallOptions::default()
    };
    let answers = q
        .call(ids, Get, 2, Strategy::All, options)
        .await
        .expect("quorum");
    assert!(answers.len() >= 2);
    for n in &ids[1..] {
        c.net.set_link(
            ids[0],
            *n,
            Link {
                state: LinkState::Down,
                ..Link::default()
            },
        );
    }
    let err = q
        .call(ids, Get, 2, Strategy::All, options)
        .await
        .expect_err("no quorum");
    assert_eq!((err.needed, err.ok), (2, 1));
    let start = Instant::now();
    let err = q
        .call(ids, Get, 2, Strategy::Hedged, options)
        .await
        .expect_err("no quorum");
    assert_eq!(err.ok, 1);
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "fails fast on refused nodes"
    );
}
