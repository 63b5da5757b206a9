//! The secret proof that ends a node handshake (gate 3 of [`crate::quic`]):
//! each end sends a keyed hash of the TLS session's keying material, its boot
//! number and what the connection is for.

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

/// The secret-proof message: proof, boot number, purpose, link id.
const PROOF_LEN: usize = 32 + 8 + 1 + 16;

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
    let mut msg = [0u8; PROOF_LEN];
    msg[..32].copy_from_slice(proof.as_bytes());
    msg[32..40].copy_from_slice(&boot.to_be_bytes());
    if let Purpose::Bulk(link) = purpose {
        msg[40] = 1;
        msg[41..].copy_from_slice(&link);
    }
    send.write_all(&msg)
        .await
        .map_err(|e| Error::Handshake(format!("sending the secret proof: {e}")))?;
    send.finish()
        .map_err(|e| Error::Handshake(format!("sending the secret proof: {e}")))
}

/// Reads the peer's proof, boot number and purpose.
pub(crate) async fn read_proof(
    recv: &mut quinn::RecvStream,
) -> Result<(blake3::Hash, u64, Purpose), Error> {
    let mut msg = [0u8; PROOF_LEN];
    recv.read_exact(&mut msg)
        .await
        .map_err(|e| Error::Handshake(format!("reading the secret proof: {e}")))?;
    let mut proof = [0u8; 32];
    proof.copy_from_slice(&msg[..32]);
    let mut boot = [0u8; 8];
    boot.copy_from_slice(&msg[32..40]);
    let purpose = match msg[40] {
        0 => Purpose::Main,
        1 => {
            let mut link = [0u8; 16];
            link.copy_from_slice(&msg[41..]);
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
