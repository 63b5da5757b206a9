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
            Ok(pkcs8) => Self::from_pkcs8(&pkcs8),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate()?;
                key.save(&path)?;
                Ok(key)
            }
            Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
        }
    }

    /// A key from its PKCS#8 DER encoding.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, Error> {
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
    fn damaged_key_is_refused() {
        assert!(NodeKey::from_pkcs8(b"not a key").is_err());
    }
}
