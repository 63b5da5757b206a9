use std::time::Duration;

use hangar_net::memory::{Link, MemoryNetwork};
use hangar_net::{NodeKey, RpcSecret};
use hangar_util::clock::Clock;

use super::*;
use crate::history::NodeRole;
use crate::test_support::eventually;

#[tokio::test(start_paused = true)]
async fn a_layout_applied_on_one_node_reaches_all_and_survives_restart() {
    let net = MemoryNetwork::new();
    net.set_default_link(Link::with_latency(Duration::from_millis(20)));
    let secret = RpcSecret::generate();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().expect("dir")).collect();
    let ids: Vec<NodeId> = (0..3)
        .map(|_| NodeKey::generate().expect("key").id())
        .collect();
    let params = LayoutParams::default();
    let mut systems = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let bootstrap = if i == 0 {
            vec![]
        } else {
            vec![BootstrapPeer {
                id: ids[0],
                addr: systems
                    .first()
                    .map(|s: &Arc<System>| s.rpc_addr().to_string())
                    .expect("first"),
            }]
        };
        let membership = MembershipConfig {
            bootstrap,
            ..MembershipConfig::default()
        };
        let s = System::with_transport(
            net.transport(*id, &secret),
            Clock::system(),
            Some(dirs[i].path()),
            membership,
            params,
        )
        .expect("start");
        systems.push(s);
    }
    eventually("all connected", Duration::from_secs(10), || {
        systems
            .iter()
            .all(|s| s.status().nodes.iter().filter(|n| n.up).count() == 3)
    })
    .await;

    // Stage on node 1, apply on node 2: staged changes travel too.
    for (i, id) in ids.iter().enumerate() {
        systems[1]
            .layout()
            .update(|h, ts| h.stage_role(*id, NodeRole::storage(format!("zone{i}"), 1 << 40), ts))
            .expect("stage");
    }
    eventually("staged changes spread", Duration::from_secs(5), || {
        systems[2].layout().history().staged().roles.len() == 3
    })
    .await;
    systems[2]
        .layout()
        .update(|h, ts| h.apply(Some(1), ts))
        .expect("apply");
    eventually("version 1 everywhere", Duration::from_secs(5), || {
        systems
            .iter()
            .all(|s| s.status().nodes.iter().all(|n| n.layout_version == Some(1)))
    })
    .await;
    let health = systems[0].health();
    assert_eq!(health.status, "healthy");
    assert_eq!((health.partitions, health.storage_nodes_up), (256, 3));
    for s in &systems {
        assert!(s.status().nodes.iter().all(|n| n.partitions == 256));
    }
    // Zones reached the quorum helper: every other node is in another zone.
    assert_eq!(systems[0].quorum().preference_order(&ids)[0], ids[0]);

    // Node 2 restarts from its metadata directory: same layout.
    systems[2].shutdown();
    let again = System::with_transport(
        net.transport(ids[2], &secret),
        Clock::system(),
        Some(dirs[2].path()),
        MembershipConfig::default(),
        params,
    )
    .expect("restart");
    assert_eq!(again.layout().history().current().version, 1);
    eventually(
        "restarted node reconnects from its saved peers",
        Duration::from_secs(10),
        || again.status().nodes.iter().filter(|n| n.up).count() == 3,
    )
    .await;
}
