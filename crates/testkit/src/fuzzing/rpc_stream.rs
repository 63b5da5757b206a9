//! Bytes a peer sends on a request stream, to a node with every endpoint a
//! storage node serves (membership, layout, tables, blocks), and the
//! handshake's secret proof.
//!
//! Input: byte 0 says what the rest is:
//! - bit 7 set: the proof message a connecting node sends, given to the
//!   handshake's decoder (`hangar_net::fuzzing::parse_proof`);
//! - bit 6 set: the whole stream, raw (its header frame included);
//! - otherwise the harness writes a valid header frame for the endpoint
//!   `ENDPOINTS[byte & 0x0f]` (bit 5: a body follows) and the rest is the
//!   payload, framed by the harness; with a body, the payload is
//!   `rest[1..1 + rest[0]]` and the bytes after it are sent raw (body frames).
//!
//! The stream is then closed for writing and the response read to its end.
//! Checks: no panic, and the node answers or closes the stream within 10 s
//! of the request's end (no stream held open by a request that can never
//! complete).

use std::time::Duration;

use hangar_net::{Priority, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Endpoints a header frame written by the harness may name.
const ENDPOINTS: &[&str] = &[
    "cluster/ping",
    "cluster/peers",
    "cluster/layout/pull",
    "cluster/layout/push",
    "table/op",
    "table/batch",
    "table/merge",
    "block/put",
    "block/get",
    "no/such/endpoint",
];

/// `bytes` with its length prefix.
fn frame(bytes: &[u8]) -> Vec<u8> {
    let mut f = (bytes.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(bytes);
    f
}

/// Sends `data` to a node as described in the module documentation. Panics
/// if the node panics or neither answers nor closes the stream within 10 s
/// of the request's end.
pub fn rpc_stream(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 0x80 != 0 {
        let _ = hangar_net::fuzzing::parse_proof(rest);
        return;
    }
    let stream = if mode & 0x40 != 0 {
        rest.to_vec()
    } else {
        let endpoint = ENDPOINTS[usize::from(mode & 0x0f) % ENDPOINTS.len()];
        let with_body = mode & 0x20 != 0;
        let mut s =
            hangar_net::fuzzing::request_header_frame(endpoint, Priority::Metadata, with_body);
        if with_body {
            let n = rest.first().map_or(0, |&n| usize::from(n));
            let payload = rest.get(1..(1 + n).min(rest.len())).unwrap_or_default();
            s.extend_from_slice(&frame(payload));
            s.extend_from_slice(rest.get(1 + n..).unwrap_or_default());
        } else {
            s.extend_from_slice(&frame(rest));
        }
        s
    };
    super::with_node(|node| {
        let conn = match &node.peer {
            Some((_, c)) if !c.is_closed() => c.clone(),
            _ => {
                let (id, addr) = (node.cluster.ids[0], node.cluster.systems[0].rpc_addr());
                let transport = node.cluster.net.transport(
                    hangar_net::NodeKey::generate().expect("key").id(),
                    node.cluster.secret(),
                );
                let conn = node
                    .rt
                    .block_on(transport.connect(addr, id))
                    .expect("connect to the node");
                node.peer = Some((transport, conn.clone()));
                conn
            }
        };
        node.rt.block_on(async move {
            let (mut send, mut recv) = conn.open_stream(Priority::Metadata).await.expect("stream");
            // The node may close the stream before reading it all.
            let _ = send.write_all(&stream).await;
            let _ = send.shutdown().await;
            let read = tokio::time::timeout(Duration::from_secs(10), async {
                let mut buf = vec![0u8; 64 << 10];
                let mut total = 0usize;
                while let Ok(n) = recv.read(&mut buf).await {
                    total += n;
                    if n == 0 || total > 64 << 20 {
                        break;
                    }
                }
                total
            })
            .await;
            if std::env::var_os("FUZZ_TRACE").is_some() {
                eprintln!("answered {read:?} bytes");
            }
            assert!(read.is_ok(), "no answer 10 s after the request ended");
        });
    });
}
