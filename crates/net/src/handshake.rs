//! The secret proof that ends a node handshake (gate 3 of [`crate::quic`]):
//! each end sends the node protocol it speaks, a keyed hash of the TLS
//! session's keying material, its boot number and what the connection is for.

use hangar_util::NodeId;
use rustls::pki_types::CertificateDer;

use crate::identity::id_of_certificate;
use crate::Error;

const EXPORTER_LABEL: &[u8] = b"EXPORTER-hangar-rpc-secret-proof";
/// Derives the name of a main connection's link from its keying material.
const LINK_ID_CONTEXT: &str = "hangar 2026-11 bulk link id";

/// Names a main connection, for the bulk connection that joins it: both ends
/// derive it from their TLS session, which nobody else knows.
pub(crate) type LinkId = [u8; 16];

/// What a connection is for, as its secret-proof message says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// The main connection of a peer pair.
    Main,
    /// The bulk connection of the main connection named.
    Bulk(LinkId),
}

/// The version of the messages nodes exchange. Nodes refuse peers that speak
/// another one, saying so, rather than misread them. Any change of a message's
/// encoding needs a new one: the fixtures of `testdata/formats/` (see
/// [`crate::fixtures`]) fail the tests otherwise.
pub const NODE_PROTOCOL: u8 = 2;
/// The secret-proof message: protocol, proof, boot number, purpose, link id.
const PROOF_LEN: usize = 1 + 32 + 8 + 1 + 16;
/// The secret-proof message of node protocol 1, which had neither a protocol
/// byte nor a purpose.
const PROTOCOL_1_PROOF_LEN: usize = 32 + 8;

/// The name both ends give a main connection.
pub(crate) fn link_id(exporter: &[u8; 32]) -> LinkId {
    let mut id = [0u8; 16];
    id.copy_from_slice(&blake3::derive_key(LINK_ID_CONTEXT, exporter)[..16]);
    id
}

/// The node id of the peer's certificate; closes the connection without one.
pub(crate) fn peer_id(conn: &quinn::Connection) -> Result<NodeId, Error> {
    let refuse = |why: &str| {
        conn.close(2u32.into(), why.as_bytes());
        Error::Handshake(format!("{}: {why}", conn.remote_address()))
    };
    let Some(identity) = conn.peer_identity() else {
        return Err(refuse("no certificate"));
    };
    let Ok(certs) = identity.downcast::<Vec<CertificateDer<'static>>>() else {
        return Err(refuse("unexpected identity type"));
    };
    certs
        .first()
        .and_then(id_of_certificate)
        .ok_or_else(|| refuse("unreadable certificate"))
}

/// Keying material of the connection's TLS session, for the proofs.
pub(crate) fn exporter(conn: &quinn::Connection) -> Result<[u8; 32], Error> {
    let mut out = [0u8; 32];
    conn.export_keying_material(&mut out, EXPORTER_LABEL, b"")
        .map_err(|_| Error::Handshake("TLS keying material unavailable".into()))?;
    Ok(out)
}

/// Sends this end's proof, boot number and purpose, and ends the stream.
pub(crate) async fn write_proof(
    send: &mut quinn::SendStream,
    proof: &blake3::Hash,
    boot: u64,
    purpose: Purpose,
) -> Result<(), Error> {
    send.write_all(&encode_proof(proof, boot, purpose))
        .await
        .map_err(|e| Error::Handshake(format!("sending the secret proof: {e}")))?;
    send.finish()
        .map_err(|e| Error::Handshake(format!("sending the secret proof: {e}")))
}

/// Reads the peer's proof, boot number and purpose; closes the connection,
/// telling the peer why (another node protocol, say), if they are unreadable.
pub(crate) async fn read_proof(
    conn: &quinn::Connection,
    recv: &mut quinn::RecvStream,
) -> Result<(blake3::Hash, u64, Purpose), Error> {
    let read = match recv.read_to_end(PROOF_LEN).await {
        Ok(msg) => parse_proof(&msg),
        Err(e) => Err(Error::Handshake(format!("reading the secret proof: {e}"))),
    };
    if let Err(e) = &read {
        conn.close(4u32.into(), e.to_string().as_bytes());
    }
    read
}

/// The secret-proof message: node protocol, proof, boot number (big-endian),
/// purpose (0 main, 1 bulk) and the link id of a bulk connection (zeros for a
/// main one).
fn encode_proof(proof: &blake3::Hash, boot: u64, purpose: Purpose) -> [u8; PROOF_LEN] {
    let mut msg = [0u8; PROOF_LEN];
    msg[0] = NODE_PROTOCOL;
    msg[1..33].copy_from_slice(proof.as_bytes());
    msg[33..41].copy_from_slice(&boot.to_be_bytes());
    if let Purpose::Bulk(link) = purpose {
        msg[41] = 1;
        msg[42..].copy_from_slice(&link);
    }
    msg
}

/// Decodes a secret-proof message.
pub(crate) fn parse_proof(msg: &[u8]) -> Result<(blake3::Hash, u64, Purpose), Error> {
    let other_protocol = |theirs: u8| {
        Error::Handshake(format!(
            "the peer speaks node protocol {theirs} and this node {NODE_PROTOCOL}: \
             run the same Hangar version on every node"
        ))
    };
    if msg.len() == PROTOCOL_1_PROOF_LEN {
        return Err(other_protocol(1));
    }
    match msg.first() {
        Some(&NODE_PROTOCOL) => {}
        Some(&theirs) => return Err(other_protocol(theirs)),
        None => return Err(Error::Handshake("empty secret proof".into())),
    }
    let Ok(msg) = <&[u8; PROOF_LEN]>::try_from(msg) else {
        return Err(Error::Handshake(format!(
            "secret proof of {} bytes instead of {PROOF_LEN}",
            msg.len()
        )));
    };
    let mut proof = [0u8; 32];
    proof.copy_from_slice(&msg[1..33]);
    let mut boot = [0u8; 8];
    boot.copy_from_slice(&msg[33..41]);
    let purpose = match msg[41] {
        0 => Purpose::Main,
        1 => {
            let mut link = [0u8; 16];
            link.copy_from_slice(&msg[42..]);
            Purpose::Bulk(link)
        }
        other => {
            return Err(Error::Handshake(format!(
                "unknown connection purpose {other}"
            )))
        }
    };
    Ok((
        blake3::Hash::from_bytes(proof),
        u64::from_be_bytes(boot),
        purpose,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(protocol: u8, purpose: u8) -> Vec<u8> {
        let mut msg = vec![protocol];
        msg.extend_from_slice(&[7; 32]);
        msg.extend_from_slice(&42u64.to_be_bytes());
        msg.push(purpose);
        msg.extend_from_slice(&[9; 16]);
        msg
    }

    #[test]
    fn proofs_decode_with_their_purpose() {
        let (proof, boot, purpose) = parse_proof(&message(NODE_PROTOCOL, 0)).expect("main");
        assert_eq!(
            (proof.as_bytes(), boot, purpose),
            (&[7; 32], 42, Purpose::Main)
        );
        let (_, _, purpose) = parse_proof(&message(NODE_PROTOCOL, 1)).expect("bulk");
        assert_eq!(purpose, Purpose::Bulk([9; 16]));
    }

    #[test]
    fn peers_of_another_protocol_are_told_apart_from_bad_proofs() {
        let error = |msg: &[u8]| parse_proof(msg).expect_err("refused").to_string();
        assert!(error(&[0; PROTOCOL_1_PROOF_LEN]).contains("node protocol 1 and this node 2"));
        assert!(error(&message(3, 0)).contains("node protocol 3 and this node 2"));
        assert!(error(&message(NODE_PROTOCOL, 2)).contains("unknown connection purpose 2"));
        assert!(error(&message(NODE_PROTOCOL, 0)[..50]).contains("of 50 bytes"));
        assert!(error(&[]).contains("empty"));
    }
}

#[cfg(test)]
mod format_fixtures {
    //! The secret-proof message, pinned by the fixture
    //! `testdata/formats/HandshakeProof.p<NODE_PROTOCOL>.bin` (see
    //! [`crate::fixtures`]): a main connection's proof, then a bulk one's.

    use hangar_util::fixtures::{Fixtures, Pinned};

    use super::*;

    #[test]
    fn the_secret_proof_format_is_pinned() {
        let samples = [
            (blake3::hash(b"main"), 0x0102_0304_0506_0708, Purpose::Main),
            (
                blake3::hash(b"bulk"),
                u64::MAX - 1,
                Purpose::Bulk(*b"0123456789abcdef"),
            ),
        ];
        let encoded: Vec<u8> = samples
            .iter()
            .flat_map(|(proof, boot, purpose)| encode_proof(proof, *boot, *purpose))
            .collect();
        let fixtures = Fixtures::in_workspace(env!("CARGO_MANIFEST_DIR"));
        let pinned = Pinned::Wire {
            name: "HandshakeProof",
            protocol: NODE_PROTOCOL,
        };
        let fixture = fixtures
            .check(&pinned, &encoded)
            .unwrap_or_else(|e| panic!("{e}"));
        for (msg, expected) in fixture.chunks(PROOF_LEN).zip(&samples) {
            let decoded = parse_proof(msg).expect("the fixture decodes");
            assert_eq!(&decoded, expected);
        }
    }
}
