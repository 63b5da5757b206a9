//! A node's long-term identity: an Ed25519 key pair kept in the metadata
//! directory. The node id is the BLAKE3 hash of the public key (its DER
//! SubjectPublicKeyInfo), so a peer proves its id by completing a TLS handshake
//! with the certificate for that key.

use std::fs;
use std::io::Write;
use std::path::Path;

use hangar_util::NodeId;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::Error;

/// File name of the key inside the metadata directory.
pub const KEY_FILE: &str = "node_key";

/// A node's key pair and the self-signed certificate it presents.
pub struct NodeKey {
    pkcs8: Vec<u8>,
    certificate: CertificateDer<'static>,
    id: NodeId,
}

impl NodeKey {
    /// A new random key (not saved).
    pub fn generate() -> Result<Self, Error> {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)
            .map_err(|e| Error::Config(format!("generating the node key: {e}")))?;
        Self::from_pair(&pair)
    }

    /// Loads the key in `dir`, creating and saving a new one if there is none.
    pub fn load_or_create(dir: &Path) -> Result<Self, Error> {
        let path = dir.join(KEY_FILE);
        match fs::read(&path) {
            Ok(bytes) => {
                let key = Self::from_pkcs8(&bytes)?;
                if bytes.len() == 32 {
                    // Rewritten in the current format.
                    key.save(&path)?;
                }
                Ok(key)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate()?;
                key.save(&path)?;
                Ok(key)
            }
            Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
        }
    }

    /// A key from its PKCS#8 DER encoding, or from a bare 32-byte Ed25519 seed
    /// (the key file of nodes from before the cluster protocol).
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, Error> {
        if let Ok(seed) = <[u8; 32]>::try_from(pkcs8) {
            return Self::from_pkcs8(&seed_to_pkcs8(&seed));
        }
        let der = PrivatePkcs8KeyDer::from(pkcs8.to_vec());
        let pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_ED25519)
            .map_err(|e| Error::Config(format!("the node key is not an Ed25519 key: {e}")))?;
        Self::from_pair(&pair)
    }

    fn from_pair(pair: &rcgen::KeyPair) -> Result<Self, Error> {
        use rcgen::PublicKeyData;
        let params = rcgen::CertificateParams::new(vec!["hangar".to_string()])
            .map_err(|e| Error::Config(format!("certificate parameters: {e}")))?;
        let cert = params
            .self_signed(pair)
            .map_err(|e| Error::Config(format!("self-signing the node certificate: {e}")))?;
        Ok(NodeKey {
            pkcs8: pair.serialize_der(),
            certificate: cert.der().clone(),
            id: NodeId::from_public_key(&pair.subject_public_key_info()),
        })
    }

    fn save(&self, path: &Path) -> Result<(), Error> {
        let tmp = path.with_extension("tmp");
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let write = |tmp: &Path| -> std::io::Result<()> {
            let mut f = options.open(tmp)?;
            f.write_all(&self.pkcs8)?;
            f.sync_all()?;
            fs::rename(tmp, path)
        };
        write(&tmp).map_err(|e| Error::io(format!("writing {}", path.display()), e))
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    pub(crate) fn certificate(&self) -> CertificateDer<'static> {
        self.certificate.clone()
    }

    pub(crate) fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.pkcs8.clone()))
    }
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodeKey({})", self.id)
    }
}

/// The PKCS#8 v1 encoding of an Ed25519 private key (RFC 8410): a fixed
/// prefix, then the 32-byte seed.
fn seed_to_pkcs8(seed: &[u8; 32]) -> Vec<u8> {
    const PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let mut out = PREFIX.to_vec();
    out.extend_from_slice(seed);
    out
}

/// The node id a certificate proves, if it parses.
pub(crate) fn id_of_certificate(cert: &CertificateDer<'_>) -> Option<NodeId> {
    let cert = webpki::EndEntityCert::try_from(cert).ok()?;
    Some(NodeId::from_public_key(
        cert.subject_public_key_info().as_ref(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_persists_and_id_matches_certificate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = NodeKey::load_or_create(dir.path()).expect("create");
        let b = NodeKey::load_or_create(dir.path()).expect("load");
        assert_eq!(a.id(), b.id());
        assert_eq!(id_of_certificate(&a.certificate()), Some(a.id()));
        let other = NodeKey::generate().expect("generate");
        assert_ne!(other.id(), a.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(KEY_FILE))
                .expect("stat")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "key readable by others: {mode:o}");
        }
    }

    #[test]
    fn a_bare_seed_is_read_and_rewritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join(KEY_FILE), [5u8; 32]).expect("write");
        let a = NodeKey::load_or_create(dir.path()).expect("load seed");
        assert_ne!(fs::read(dir.path().join(KEY_FILE)).expect("read").len(), 32);
        let b = NodeKey::load_or_create(dir.path()).expect("load pkcs8");
        assert_eq!(a.id(), b.id());
    }

    #[test]
    fn damaged_key_is_refused() {
        assert!(NodeKey::from_pkcs8(b"not a key").is_err());
    }
}
