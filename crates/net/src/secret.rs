//! The cluster secret shared by all nodes, and what is derived from it: the TLS
//! application protocol name that gates connections, and the proofs that both
//! ends of a connection hold the secret.

use std::fmt;

use crate::Error;

/// The cluster's `rpc_secret`: 32 bytes, written as 64 hex characters.
#[derive(Clone)]
pub struct RpcSecret([u8; 32]);

impl RpcSecret {
    /// Parses 64 hex characters (surrounding whitespace is ignored).
    pub fn from_hex(s: &str) -> Result<Self, Error> {
        let bytes = hex::decode(s.trim())
            .map_err(|_| Error::Config("rpc_secret must be 64 hex characters".into()))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| Error::Config("rpc_secret must be 64 hex characters (32 bytes)".into()))?;
        Ok(RpcSecret(bytes))
    }

    /// A new random secret.
    pub fn generate() -> Self {
        RpcSecret(hangar_util::rng::random())
    }

    /// The 64-character hex form, for configuration files.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The TLS application protocol (ALPN) nodes of this cluster speak. A server
    /// refuses a client offering another one before sending its certificate, so a
    /// node with a different secret learns nothing, not even the node id.
    pub(crate) fn alpn(&self) -> Vec<u8> {
        let tag = blake3::derive_key("hangar rpc alpn v1", &self.0);
        format!("hangar1-{}", hex::encode(&tag[..12])).into_bytes()
    }

    /// The proof that the `role` end of the TLS session with keying material
    /// `exporter` holds the secret. Bound to the session, so it cannot be replayed
    /// on another connection.
    pub(crate) fn proof(&self, exporter: &[u8; 32], role: Role) -> blake3::Hash {
        let key = blake3::derive_key("hangar rpc secret proof v1", &self.0);
        let mut h = blake3::Hasher::new_keyed(&key);
        h.update(exporter);
        h.update(role.label());
        h.finalize()
    }
}

impl fmt::Debug for RpcSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RpcSecret(..)")
    }
}

/// Which end of a connection a proof is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// The end that dialled.
    Client,
    /// The end that accepted.
    Server,
}

impl Role {
    fn label(self) -> &'static [u8] {
        match self {
            Role::Client => b"client",
            Role::Server => b"server",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_32_hex_bytes() {
        let s = RpcSecret::generate();
        assert_eq!(RpcSecret::from_hex(&s.to_hex()).expect("valid").0, s.0);
        assert!(RpcSecret::from_hex("abcd").is_err());
        assert!(RpcSecret::from_hex(&"zz".repeat(32)).is_err());
        assert!(RpcSecret::from_hex(&"00".repeat(33)).is_err());
    }

    #[test]
    fn derived_values_depend_on_the_secret_and_role() {
        let a = RpcSecret::generate();
        let b = RpcSecret::generate();
        assert_ne!(a.alpn(), b.alpn());
        let ex = [9u8; 32];
        assert_ne!(a.proof(&ex, Role::Client), b.proof(&ex, Role::Client));
        assert_ne!(a.proof(&ex, Role::Client), a.proof(&ex, Role::Server));
        assert_ne!(a.proof(&ex, Role::Client), a.proof(&[8; 32], Role::Client));
    }
}
