//! The membership messages, pinned by the fixtures of `testdata/formats/` (see
//! [`hangar_net::fixtures`]).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use hangar_net::fixtures::check_message;
use hangar_net::NodeId;
use hangar_util::fixtures::Fixtures;
use hangar_util::Hash;

use super::{ExchangePeers, NodeHello, Ping};

fn fixtures() -> Fixtures {
    Fixtures::in_workspace(env!("CARGO_MANIFEST_DIR"))
}

fn hello(addr: SocketAddr, hostname: &str, layout_version: u64) -> NodeHello {
    NodeHello {
        addr,
        hostname: hostname.into(),
        layout_version,
        layout_digest: Hash([0x3c; 32]),
    }
}

#[test]
fn ping_format_is_pinned() {
    let v4 = SocketAddr::from((Ipv4Addr::new(192, 0, 2, 10), 3901));
    let v6 = SocketAddr::from((Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 3901));
    let request = Ping(hello(v4, "node-a", 7));
    let response = hello(v6, "node-b", 8);
    check_message(&fixtures(), "Ping", &request, &response).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn exchange_peers_format_is_pinned() {
    let v4 = SocketAddr::from((Ipv4Addr::new(192, 0, 2, 11), 3901));
    let v6 = SocketAddr::from((Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2), 3902));
    let request = ExchangePeers(vec![(NodeId([0x01; 32]), v4), (NodeId([0x02; 32]), v6)]);
    let response = vec![(NodeId([0x03; 32]), v6), (NodeId([0x04; 32]), v4)];
    check_message(&fixtures(), "ExchangePeers", &request, &response)
        .unwrap_or_else(|e| panic!("{e}"));
}
