use std::time::Duration;

use hangar_net::memory::{Link, LinkState, MemoryNetwork};
use hangar_net::{NodeKey, Rpc, RpcSecret};
use hangar_util::clock::Clock;

use super::*;
use crate::test_support::eventually;

fn fast() -> MembershipConfig {
    MembershipConfig {
        ping_interval: Duration::from_millis(500),
        ping_timeout: Duration::from_secs(1),
        down_after: Duration::from_millis(1500),
        max_backoff: Duration::from_secs(2),
        exchange_interval: Duration::from_secs(2),
        ..MembershipConfig::default()
    }
}

fn start_node(
    net: &MemoryNetwork,
    secret: &RpcSecret,
    id: NodeId,
    bootstrap: Vec<BootstrapPeer>,
    store: Option<PeerStore>,
) -> Arc<Membership> {
    let rpc = Rpc::new(net.transport(id, secret), Clock::system());
    let m = Membership::new(
        rpc,
        MembershipConfig {
            bootstrap,
            ..fast()
        },
        store,
    );
    m.start();
    m
}

fn up_count(m: &Membership) -> usize {
    m.status().iter().filter(|s| s.up).count()
}

#[test]
fn bootstrap_peer_syntax() {
    let id = NodeKey::generate().expect("key").id();
    let ok: BootstrapPeer = format!("{}@node1.example:3901", id.to_hex())
        .parse()
        .expect("valid");
    assert_eq!(ok.addr, "node1.example:3901");
    assert_eq!(ok.id, id);
    for bad in [
        "nonsense".to_string(),
        format!("{}@host", id.to_hex()),
        format!("{}@:3901", id.to_hex()),
        format!("{}@host:99999", id.to_hex()),
        "abcd@host:3901".to_string(),
    ] {
        assert!(bad.parse::<BootstrapPeer>().is_err(), "{bad}");
    }
}

#[tokio::test(start_paused = true)]
async fn five_nodes_from_one_bootstrap_peer_see_each_other() {
    let net = MemoryNetwork::new();
    net.set_default_link(Link::with_latency(Duration::from_millis(10)));
    let secret = RpcSecret::generate();
    let ids: Vec<NodeId> = (0..5)
        .map(|_| NodeKey::generate().expect("key").id())
        .collect();
    let first = start_node(&net, &secret, ids[0], vec![], None);
    let boot = BootstrapPeer {
        id: ids[0],
        addr: first.rpc().local_addr().to_string(),
    };
    let mut nodes = vec![first];
    for id in &ids[1..] {
        nodes.push(start_node(&net, &secret, *id, vec![boot.clone()], None));
    }
    eventually("all see all", Duration::from_secs(10), || {
        nodes.iter().all(|m| up_count(m) == 5)
    })
    .await;
    for m in &nodes {
        for s in m.status() {
            assert!(s.rtt.is_some(), "rtt measured");
            assert!(s.hostname.is_some());
        }
    }

    // A silent node is marked down within seconds, and up again when it speaks.
    let victim = ids[4];
    for other in &ids[..4] {
        net.set_link(
            *other,
            victim,
            Link {
                state: LinkState::Silent,
                ..Link::with_latency(Duration::from_millis(10))
            },
        );
    }
    let started = Instant::now();
    eventually("victim down everywhere", Duration::from_secs(5), || {
        nodes[..4].iter().all(|m| !m.is_up(victim))
    })
    .await;
    assert!(
        started.elapsed() <= Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    for other in &ids[..4] {
        net.set_link(
            *other,
            victim,
            Link::with_latency(Duration::from_millis(10)),
        );
    }
    eventually("victim up again", Duration::from_secs(5), || {
        nodes[..4].iter().all(|m| m.is_up(victim))
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn restarted_node_on_a_new_address_is_found_again() {
    let net = MemoryNetwork::new();
    let secret = RpcSecret::generate();
    let dir = tempfile::tempdir().expect("dir");
    let ids: Vec<NodeId> = (0..3)
        .map(|_| NodeKey::generate().expect("key").id())
        .collect();
    let a = start_node(&net, &secret, ids[0], vec![], None);
    let boot = BootstrapPeer {
        id: ids[0],
        addr: a.rpc().local_addr().to_string(),
    };
    let b = start_node(&net, &secret, ids[1], vec![boot.clone()], None);
    let c = start_node(
        &net,
        &secret,
        ids[2],
        vec![boot],
        Some(PeerStore::new(dir.path())),
    );
    eventually("all up", Duration::from_secs(10), || {
        [&a, &b, &c].iter().all(|m| up_count(m) == 3)
    })
    .await;

    // c stops; it comes back on a new address with no bootstrap list, only its
    // saved peers.
    let old_addr = c.rpc().local_addr();
    c.rpc().shutdown();
    drop(c);
    eventually("c down", Duration::from_secs(5), || {
        !a.is_up(ids[2]) && !b.is_up(ids[2])
    })
    .await;
    assert_eq!(
        PeerStore::new(dir.path()).load().len(),
        2,
        "c saved its peers"
    );
    let c = start_node(
        &net,
        &secret,
        ids[2],
        vec![],
        Some(PeerStore::new(dir.path())),
    );
    assert_ne!(c.rpc().local_addr(), old_addr);
    eventually("c found again", Duration::from_secs(5), || {
        a.is_up(ids[2]) && b.is_up(ids[2]) && up_count(&c) == 3
    })
    .await;
    let seen = a
        .status()
        .into_iter()
        .find(|s| s.id == ids[2])
        .expect("known");
    assert_eq!(seen.addr, Some(c.rpc().local_addr()));
}

#[tokio::test(start_paused = true)]
async fn a_node_with_another_secret_never_joins() {
    let net = MemoryNetwork::new();
    let ids: Vec<NodeId> = (0..3)
        .map(|_| NodeKey::generate().expect("key").id())
        .collect();
    let secret = RpcSecret::generate();
    let a = start_node(&net, &secret, ids[0], vec![], None);
    let boot = BootstrapPeer {
        id: ids[0],
        addr: a.rpc().local_addr().to_string(),
    };
    let b = start_node(&net, &secret, ids[1], vec![boot.clone()], None);
    let intruder = start_node(&net, &RpcSecret::generate(), ids[2], vec![boot], None);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(up_count(&a), 2);
    assert!(
        a.status().iter().all(|s| s.id != ids[2]),
        "intruder unknown to a"
    );
    assert!(
        b.status().iter().all(|s| s.id != ids[2]),
        "intruder unknown to b"
    );
    // The intruder learned nothing beyond its own configuration.
    let seen: Vec<NodeId> = intruder.status().iter().map(|s| s.id).collect();
    assert_eq!(seen, {
        let mut v = vec![ids[0], ids[2]];
        v.sort();
        v
    });
    assert_eq!(up_count(&intruder), 1);
}
