//! Transport and RPC tests, over QUIC on loopback and over the in-memory network.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use hangar_util::clock::{Clock, ManualWallClock};
use serde::{Deserialize, Serialize};

use crate::memory::{Link, LinkState, MemoryNetwork};
use crate::quic::{QuicConfig, QuicTransport};
use crate::*;

#[derive(Serialize, Deserialize)]
struct Echo(String);
impl Message for Echo {
    const ENDPOINT: &'static str = "test/echo";
    const PRIORITY: Priority = Priority::Control;
    type Response = String;
}

/// Returns the SHA of the request body and a body of `reply_len` bytes.
#[derive(Serialize, Deserialize)]
struct Upload {
    reply_len: usize,
}
impl Message for Upload {
    const ENDPOINT: &'static str = "test/upload";
    const PRIORITY: Priority = Priority::Data;
    type Response = (u64, [u8; 32]);
}

/// Answers the name of the thread its handler runs on.
#[derive(Serialize, Deserialize)]
struct ThreadName;
impl Message for ThreadName {
    const ENDPOINT: &'static str = "test/thread-name";
    const PRIORITY: Priority = Priority::Metadata;
    type Response = String;
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn quic_node(secret: &RpcSecret) -> (NodeKey, Arc<Rpc>) {
    let (key, rpc, _) = quic_node_and_transport(secret);
    (key, rpc)
}

fn quic_node_and_transport(secret: &RpcSecret) -> (NodeKey, Arc<Rpc>, Arc<QuicTransport>) {
    let key = NodeKey::generate().expect("key");
    let mut config = QuicConfig::new(loopback());
    config.handshake_timeout = Duration::from_secs(2);
    let transport = QuicTransport::bind(&key, secret, &config).expect("bind");
    let rpc = Rpc::new(transport.clone(), Clock::system());
    register_handlers(&rpc);
    (key, rpc, transport)
}

fn register_handlers(rpc: &Rpc) {
    rpc.register(|_from, Echo(s): Echo| async move { Ok(s) });
    rpc.register(|_from, _: ThreadName| async move {
        Ok(std::thread::current()
            .name()
            .unwrap_or_default()
            .to_string())
    });
    rpc.register_streaming(
        |_from, req: Upload, body: Option<IncomingBody>| async move {
            let mut hasher = blake3::Hasher::new();
            let mut len = 0u64;
            if let Some(mut body) = body {
                while let Some(chunk) = body.chunk().await.map_err(|e| e.to_string())? {
                    len += chunk.len() as u64;
                    hasher.update(&chunk);
                }
            }
            let reply = pattern(req.reply_len);
            Ok(Reply::with_body(
                (len, *hasher.finalize().as_bytes()),
                body_from_chunks(reply.chunks(100_000).map(Bytes::copy_from_slice).collect()),
            ))
        },
    );
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test]
async fn quic_call_and_bodies_both_ways() {
    let secret = RpcSecret::generate();
    let (_ka, a) = quic_node(&secret);
    let (kb, b) = quic_node(&secret);
    a.connect(b.local_addr(), kb.id()).await.expect("connect");
    assert_eq!(
        a.call(kb.id(), &Echo("hello".into())).await.expect("call"),
        "hello"
    );
    wait_until("b sees a", || b.is_connected(a.local_id())).await;

    // 8 MiB up, 3 MiB down, on one stream.
    let up = pattern(8 << 20);
    let body = body_from_chunks(up.chunks(300_000).map(Bytes::copy_from_slice).collect());
    let (resp, down) = a
        .call_with(
            kb.id(),
            &Upload { reply_len: 3 << 20 },
            CallOptions::default(),
            Some(body),
        )
        .await
        .expect("upload");
    assert_eq!(resp, (up.len() as u64, *blake3::hash(&up).as_bytes()));
    let down = down
        .expect("reply body")
        .collect(16 << 20)
        .await
        .expect("read");
    assert_eq!(down, pattern(3 << 20));

    // A call to ourselves runs locally.
    assert_eq!(
        a.call(a.local_id(), &Echo("me".into()))
            .await
            .expect("local"),
        "me"
    );
    // An endpoint the peer does not serve.
    #[derive(Serialize, Deserialize)]
    struct Unknown;
    impl Message for Unknown {
        const ENDPOINT: &'static str = "test/unknown";
        const PRIORITY: Priority = Priority::Control;
        type Response = ();
    }
    assert!(matches!(
        a.call(kb.id(), &Unknown).await,
        Err(Error::NoHandler(_))
    ));
}

#[tokio::test]
async fn wrong_secret_cannot_connect_either_way() {
    let (ka, a) = quic_node(&RpcSecret::generate());
    let (kb, b) = quic_node(&RpcSecret::generate());
    let err = a
        .connect(b.local_addr(), kb.id())
        .await
        .expect_err("must fail");
    assert!(
        matches!(err, Error::Connect { .. } | Error::Handshake(_)),
        "{err}"
    );
    let err = b
        .connect(a.local_addr(), ka.id())
        .await
        .expect_err("must fail");
    assert!(
        matches!(err, Error::Connect { .. } | Error::Handshake(_)),
        "{err}"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(a.connected_peers().is_empty());
    assert!(b.connected_peers().is_empty());
}

#[tokio::test]
async fn dialling_an_unexpected_node_id_fails() {
    let secret = RpcSecret::generate();
    let (_ka, a) = quic_node(&secret);
    let (_kb, b) = quic_node(&secret);
    let someone_else = NodeKey::generate().expect("key").id();
    let err = a
        .connect(b.local_addr(), someone_else)
        .await
        .expect_err("must fail");
    assert!(matches!(err, Error::Handshake(_)), "{err}");
    assert!(!a.is_connected(someone_else));
}

/// A client that presents another node's certificate without its private key.
#[derive(Debug)]
struct StolenCertificate(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for StolenCertificate {
    fn resolve(
        &self,
        _hints: &[&[u8]],
        _schemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
    fn has_certs(&self) -> bool {
        true
    }
}

/// A bare QUIC client endpoint speaking TLS with `tls`: it gets past gate 1
/// and then does whatever the test makes it do.
fn raw_client(tls: rustls::ClientConfig) -> quinn::Endpoint {
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).expect("quic");
    let mut endpoint = quinn::Endpoint::client(loopback()).expect("client");
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
    endpoint
}

#[tokio::test]
async fn impersonating_another_node_fails() {
    let secret = RpcSecret::generate();
    let (victim, _v) = quic_node(&secret);
    let (kb, b) = quic_node(&secret);
    let attacker = NodeKey::generate().expect("key");
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(attacker.private_key())
        .expect("key");
    let certified = rustls::sign::CertifiedKey::new(vec![victim.certificate()], signing);
    let mut tls = crate::tls::client_config(&attacker, &secret).expect("config");
    tls.client_auth_cert_resolver = Arc::new(StolenCertificate(Arc::new(certified)));
    let endpoint = raw_client(tls);
    let result = async {
        let conn = endpoint
            .connect(b.local_addr(), "hangar")
            .ok()?
            .await
            .ok()?;
        // Even if the TLS layer let it through, the node must not accept it.
        let (mut s, _r) = conn.open_bi().await.ok()?;
        s.write_all(&[0u8; 40]).await.ok()?;
        conn.closed().await;
        Some(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), result).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!b.is_connected(victim.id()), "impersonator admitted");
    assert!(b.connected_peers().is_empty());
    let _ = kb;
}

#[tokio::test]
async fn garbage_and_stalled_handshakes_do_not_block_the_listener() {
    let secret = RpcSecret::generate();
    let (kb, b) = quic_node(&secret);
    // Garbage datagrams, empty and large.
    let sock = UdpSocket::bind(loopback()).expect("udp");
    for len in [0usize, 1, 7, 100, 1200, 1500] {
        let junk: Vec<u8> = (0..len).map(|_| hangar_util::rng::random()).collect();
        sock.send_to(&junk, b.local_addr()).expect("send");
    }
    // Truncated handshakes: TLS completes but no secret proof ever comes. More
    // of them than... a few, held open.
    let stalled = NodeKey::generate().expect("key");
    let endpoint = raw_client(crate::tls::client_config(&stalled, &secret).expect("config"));
    let mut held = Vec::new();
    let stall = || async {
        endpoint
            .connect(b.local_addr(), "hangar")
            .expect("connect")
            .await
    };
    // Below the per-address cap (4 pending handshakes).
    for _ in 0..3 {
        held.push(stall().await.expect("TLS completes"));
    }
    // A real node still gets in at once.
    let (_ka, a) = quic_node(&secret);
    tokio::time::timeout(Duration::from_secs(1), a.connect(b.local_addr(), kb.id()))
        .await
        .expect("not stalled")
        .expect("connects");
    assert_eq!(
        a.call(kb.id(), &Echo("ok".into())).await.expect("call"),
        "ok"
    );
    // The node's bulk connection (a handshake from the same address) is up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    // One address cannot hold more than 4 handshake slots.
    held.push(stall().await.expect("the fourth is accepted"));
    let fifth = stall().await;
    assert!(
        fifth.is_err(),
        "a fifth pending handshake from one address is refused"
    );
    // The stalled ones are dropped at the handshake deadline and never admitted.
    for conn in &held {
        tokio::time::timeout(Duration::from_secs(5), conn.closed())
            .await
            .expect("closed by the deadline");
    }
    // Then the address may try again.
    let again = stall().await.expect("slots are freed after the deadline");
    drop(again);
    assert!(!b.is_connected(stalled.id()));
}

#[tokio::test]
async fn a_peer_of_another_node_protocol_is_told_why_it_is_refused() {
    let secret = RpcSecret::generate();
    let (_kb, b) = quic_node(&secret);
    // A node of protocol 1: the right secret and certificate, and a proof
    // message of the old form (proof and boot number only).
    let old = NodeKey::generate().expect("key");
    let endpoint = raw_client(crate::tls::client_config(&old, &secret).expect("config"));
    let conn = endpoint
        .connect(b.local_addr(), "hangar")
        .expect("connect")
        .await
        .expect("TLS completes");
    let (mut send, _recv) = conn.open_bi().await.expect("stream");
    send.write_all(&[0u8; 40]).await.expect("proof");
    send.finish().expect("finish");
    let closed = tokio::time::timeout(Duration::from_secs(5), conn.closed())
        .await
        .expect("refused at once");
    let quinn::ConnectionError::ApplicationClosed(close) = closed else {
        panic!("closed by the node, not {closed:?}");
    };
    let reason = String::from_utf8_lossy(&close.reason).to_string();
    assert!(
        reason.contains("node protocol 1 and this node 2"),
        "{reason}"
    );
    assert!(!b.is_connected(old.id()));
}

#[tokio::test]
async fn simultaneous_dials_settle_on_one_connection() {
    let secret = RpcSecret::generate();
    let (ka, a) = quic_node(&secret);
    let (kb, b) = quic_node(&secret);
    let (ra, rb) = tokio::join!(
        a.connect(b.local_addr(), kb.id()),
        b.connect(a.local_addr(), ka.id())
    );
    ra.expect("a dials");
    rb.expect("b dials");
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..10 {
        assert_eq!(a.call(kb.id(), &Echo("x".into())).await.expect("a→b"), "x");
        assert_eq!(b.call(ka.id(), &Echo("y".into())).await.expect("b→a"), "y");
    }
    assert_eq!(a.connected_peers().len(), 1);
    assert_eq!(b.connected_peers().len(), 1);
}

#[tokio::test]
async fn restarted_peer_replaces_its_old_connection() {
    let secret = RpcSecret::generate();
    let (ka, a) = quic_node(&secret);
    let dir = tempfile::tempdir().expect("dir");
    let kb = NodeKey::load_or_create(dir.path()).expect("key");
    let start_b = || {
        let t = QuicTransport::bind(&kb, &secret, &QuicConfig::new(loopback())).expect("bind");
        let rpc = Rpc::new(t, Clock::system());
        register_handlers(&rpc);
        rpc
    };
    let b1 = start_b();
    b1.connect(a.local_addr(), ka.id()).await.expect("connect");
    wait_until("a sees b", || a.is_connected(kb.id())).await;
    // b "crashes": its socket vanishes without closing the connection.
    drop(b1);
    let b2 = start_b();
    b2.connect(a.local_addr(), ka.id())
        .await
        .expect("reconnect");
    assert_eq!(
        b2.call(ka.id(), &Echo("back".into())).await.expect("b→a"),
        "back"
    );
    // a uses the new connection at once, without waiting for the old one to time out.
    tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            if let Ok(r) = a
                .call_with(
                    kb.id(),
                    &Echo("hi".into()),
                    CallOptions {
                        timeout: Duration::from_millis(300),
                        ..Default::default()
                    },
                    None,
                )
                .await
            {
                break r;
            }
        }
    })
    .await
    .expect("a reaches the restarted b");
}

#[tokio::test]
async fn clock_follows_peers() {
    let net = MemoryNetwork::new();
    let secret = RpcSecret::generate();
    let (ka, kb) = (
        NodeKey::generate().expect("key"),
        NodeKey::generate().expect("key"),
    );
    let wall = Clock::system().wall_msec();
    let ahead = Clock::new(Arc::new(ManualWallClock::new(wall + 60_000)));
    let a = Rpc::new(net.transport(ka.id(), &secret), ahead.clone());
    let b = Rpc::new(net.transport(kb.id(), &secret), Clock::system());
    register_handlers(&b);
    a.connect(b.local_addr(), kb.id()).await.expect("connect");
    a.call(kb.id(), &Echo(String::new())).await.expect("call");
    // b saw a's clock, a minute ahead of its own wall clock.
    assert!(b.clock().now() > wall + 60_000);

    // A clock more than an hour ahead is not followed.
    let far = Clock::new(Arc::new(ManualWallClock::new(wall + 7_200_000)));
    let kc = NodeKey::generate().expect("key");
    let c = Rpc::new(net.transport(kc.id(), &secret), far);
    c.connect(b.local_addr(), kb.id()).await.expect("connect");
    c.call(kb.id(), &Echo(String::new())).await.expect("call");
    assert!(b.clock().now() < wall + 3_600_000);
}

#[tokio::test(start_paused = true)]
async fn memory_links_have_latency_silence_and_partitions() {
    let net = MemoryNetwork::new();
    let secret = RpcSecret::generate();
    let (ka, kb) = (
        NodeKey::generate().expect("key"),
        NodeKey::generate().expect("key"),
    );
    let a = Rpc::new(net.transport(ka.id(), &secret), Clock::system());
    let b = Rpc::new(net.transport(kb.id(), &secret), Clock::system());
    register_handlers(&b);
    net.set_link(
        ka.id(),
        kb.id(),
        Link::with_latency(Duration::from_millis(25)),
    );
    a.connect(b.local_addr(), kb.id()).await.expect("connect");
    let start = tokio::time::Instant::now();
    a.call(kb.id(), &Echo("x".into())).await.expect("call");
    let rtt = start.elapsed();
    assert!(
        rtt >= Duration::from_millis(50) && rtt < Duration::from_millis(60),
        "{rtt:?}"
    );

    // Silent: the call gets no answer, the connection stays.
    net.set_link(
        ka.id(),
        kb.id(),
        Link {
            state: LinkState::Silent,
            ..Link::with_latency(Duration::from_millis(25))
        },
    );
    let opts = CallOptions {
        timeout: Duration::from_secs(1),
        ..Default::default()
    };
    let r = a.call_with(kb.id(), &Echo("x".into()), opts, None).await;
    assert!(matches!(r, Err(Error::Timeout(_))), "{r:?}");
    assert!(a.is_connected(kb.id()));

    // Down: the connection closes, both sides notice, reconnecting fails.
    let mut events = a.subscribe();
    net.set_link(
        ka.id(),
        kb.id(),
        Link {
            state: LinkState::Down,
            ..Link::default()
        },
    );
    let ev = tokio::time::timeout(Duration::from_secs(1), events.recv())
        .await
        .expect("event")
        .expect("recv");
    assert_eq!(ev, PeerEvent::Disconnected { id: kb.id() });
    assert!(a.connect(b.local_addr(), kb.id()).await.is_err());

    // Healed.
    net.set_link(ka.id(), kb.id(), Link::default());
    a.connect(b.local_addr(), kb.id()).await.expect("reconnect");
    assert_eq!(a.call(kb.id(), &Echo("z".into())).await.expect("call"), "z");
}

#[tokio::test(start_paused = true)]
async fn memory_loss_delays_only_the_stream_that_lost_data() {
    let net = MemoryNetwork::new();
    let secret = RpcSecret::generate();
    let (ka, kb) = (
        NodeKey::generate().expect("key"),
        NodeKey::generate().expect("key"),
    );
    let a = Rpc::new(net.transport(ka.id(), &secret), Clock::system());
    let b = Rpc::new(net.transport(kb.id(), &secret), Clock::system());
    register_handlers(&b);
    net.set_link(
        ka.id(),
        kb.id(),
        Link {
            loss: 0.01,
            ..Link::with_latency(Duration::from_millis(25))
        },
    );
    a.connect(b.local_addr(), kb.id()).await.expect("connect");
    // A 4 MiB body loses packets (3,500 packets at 1%); small calls in between
    // mostly do not wait for it.
    let bulk = {
        let a = a.clone();
        let id = kb.id();
        tokio::spawn(async move {
            let body = body_from_chunks(
                pattern(4 << 20)
                    .chunks(64 << 10)
                    .map(Bytes::copy_from_slice)
                    .collect(),
            );
            a.call_with(
                id,
                &Upload { reply_len: 0 },
                CallOptions::default(),
                Some(body),
            )
            .await
            .map(|(r, _)| r)
        })
    };
    let mut slow = 0;
    for _ in 0..50 {
        let start = tokio::time::Instant::now();
        a.call(kb.id(), &Echo("x".into())).await.expect("call");
        if start.elapsed() > Duration::from_millis(60) {
            slow += 1;
        }
    }
    let (len, _) = bulk.await.expect("join").expect("bulk");
    assert_eq!(len, 4 << 20);
    assert!(slow <= 10, "{slow} of 50 small calls delayed");
}

#[tokio::test]
async fn concurrent_calls_share_one_connection() {
    let secret = RpcSecret::generate();
    let (_ka, a) = quic_node(&secret);
    let (kb, b) = quic_node(&secret);
    a.connect(b.local_addr(), kb.id()).await.expect("connect");
    let bid = kb.id();
    let results: Vec<_> = futures::stream::iter(0..200)
        .map(|i| {
            let a = a.clone();
            async move { a.call(bid, &Echo(i.to_string())).await }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 200);
    let _ = b;
}

/// The thread that handled a `ThreadName` call sent with `priority`.
async fn handled_on(from: &Rpc, to: NodeId, priority: Priority) -> String {
    let options = CallOptions {
        priority: Some(priority),
        ..CallOptions::default()
    };
    let (name, _) = from
        .call_with(to, &ThreadName, options, None)
        .await
        .expect("call");
    name
}

#[tokio::test]
async fn bulk_requests_travel_on_the_bulk_lane_both_ways() {
    let secret = RpcSecret::generate();
    let (ka, a, ta) = quic_node_and_transport(&secret);
    let (kb, b, tb) = quic_node_and_transport(&secret);
    a.connect(b.local_addr(), kb.id()).await.expect("connect");
    wait_until("b is connected", || b.is_connected(ka.id())).await;
    // The dialler brings the bulk connection up next to the main one; until
    // then bulk requests use the main connection.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while handled_on(&a, kb.id(), Priority::Data).await != "hangar-bulk" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "data requests reach the bulk lane"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for priority in [Priority::Data, Priority::Background] {
        assert_eq!(handled_on(&a, kb.id(), priority).await, "hangar-bulk");
        assert_eq!(handled_on(&b, ka.id(), priority).await, "hangar-bulk");
    }
    for priority in [Priority::Control, Priority::Metadata] {
        assert_ne!(handled_on(&a, kb.id(), priority).await, "hangar-bulk");
        assert_ne!(handled_on(&b, ka.id(), priority).await, "hangar-bulk");
    }
    // Bodies cross the bulk connection intact, both ways.
    let body = pattern(3 << 20);
    let options = CallOptions::default();
    let chunks = body.chunks(100_000).map(Bytes::copy_from_slice).collect();
    let ((len, hash), reply) = b
        .call_with(
            ka.id(),
            &Upload { reply_len: 2 << 20 },
            options,
            Some(body_from_chunks(chunks)),
        )
        .await
        .expect("upload");
    assert_eq!(len, body.len() as u64);
    assert_eq!(hash, *blake3::hash(&body).as_bytes());
    let mut reply = reply.expect("reply body");
    let mut received = Vec::new();
    while let Some(chunk) = reply.chunk().await.expect("chunk") {
        received.extend_from_slice(&chunk);
    }
    assert_eq!(received, pattern(2 << 20));
    // Each end holds the main connection and the bulk one.
    assert_eq!((ta.open_connections(), tb.open_connections()), (2, 2));
    // Closing the peer link closes both connections, at both ends.
    a.disconnect(kb.id());
    wait_until("b sees the link closed", || !b.is_connected(ka.id())).await;
    wait_until("a's connections are closed", || ta.open_connections() == 0).await;
    wait_until("b's connections are closed", || tb.open_connections() == 0).await;
}

/// Relays UDP datagrams between the first client that writes to it and
/// `server`, holding each one back for `delay`; returns its address.
async fn delay_relay(server: SocketAddr, delay: Duration) -> SocketAddr {
    use tokio::net::UdpSocket;
    let front = Arc::new(UdpSocket::bind(loopback()).await.expect("bind"));
    let back = Arc::new(UdpSocket::bind(loopback()).await.expect("bind"));
    let addr = front.local_addr().expect("address");
    let (client_tx, client_rx) = tokio::sync::watch::channel(None::<SocketAddr>);
    let relay = |from: Arc<UdpSocket>, to: Arc<UdpSocket>, dest: Option<SocketAddr>| {
        let mut client_rx = client_rx.clone();
        let client_tx = client_tx.clone();
        async move {
            let mut buf = vec![0u8; 65536];
            while let Ok((n, source)) = from.recv_from(&mut buf).await {
                let dest = match dest {
                    Some(server) => {
                        client_tx.send_replace(Some(source));
                        server
                    }
                    None => match *client_rx.borrow_and_update() {
                        Some(client) => client,
                        None => continue,
                    },
                };
                let (to, datagram) = (to.clone(), buf[..n].to_vec());
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = to.send_to(&datagram, dest).await;
                });
            }
        }
    };
    tokio::spawn(relay(front.clone(), back.clone(), Some(server)));
    tokio::spawn(relay(back, front, None));
    addr
}

#[tokio::test]
async fn on_a_slow_link_bulk_requests_stay_on_the_main_connection() {
    let secret = RpcSecret::generate();
    let (ka, a) = quic_node(&secret);
    let (kb, b) = quic_node(&secret);
    // 5 ms each way: a base round trip of 10 ms, above the fast-link bound.
    let relay = delay_relay(b.local_addr(), Duration::from_millis(5)).await;
    a.connect(relay, kb.id())
        .await
        .expect("connect through the relay");
    wait_until("b is connected", || b.is_connected(ka.id())).await;
    // Time for the bulk connection to come up, as it does on any link.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for priority in [Priority::Data, Priority::Background] {
        assert_ne!(handled_on(&a, kb.id(), priority).await, "hangar-bulk");
        assert_ne!(handled_on(&b, ka.id(), priority).await, "hangar-bulk");
    }
}
