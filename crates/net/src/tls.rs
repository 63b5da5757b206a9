//! TLS 1.3 configuration for node connections. Nodes present self-signed
//! certificates: there is no certificate authority, a certificate only binds the
//! connection to a key, and so to a node id. The verifiers below therefore accept
//! any well-formed certificate but check every handshake signature against it;
//! which ids are welcome is decided after the handshake (the expected id when
//! dialling, the secret proof in both directions).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls13_signature, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::identity::{id_of_certificate, NodeKey};
use crate::{Error, RpcSecret};

/// The server name clients ask for; certificates are not checked against it.
pub(crate) const SERVER_NAME: &str = "hangar";

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Checks that a certificate parses and that handshake signatures are made with
/// its key. TLS 1.2 is never negotiated.
#[derive(Debug)]
struct NodeCertVerifier {
    algorithms: WebPkiSupportedAlgorithms,
}

impl NodeCertVerifier {
    fn new() -> Arc<Self> {
        Arc::new(NodeCertVerifier {
            algorithms: provider().signature_verification_algorithms,
        })
    }

    fn no_tls12() -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn check(cert: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        id_of_certificate(cert)
            .map(|_| ())
            .ok_or(rustls::Error::InvalidCertificate(
                rustls::CertificateError::BadEncoding,
            ))
    }
}

impl ServerCertVerifier for NodeCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Self::check(end_entity).map(|()| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Self::no_tls12()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl ClientCertVerifier for NodeCertVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Self::check(end_entity).map(|()| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Self::no_tls12()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

fn tls_error(e: rustls::Error) -> Error {
    Error::Config(format!("TLS configuration: {e}"))
}

/// The configuration for accepting connections.
pub(crate) fn server_config(
    key: &NodeKey,
    secret: &RpcSecret,
) -> Result<rustls::ServerConfig, Error> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_error)?
        .with_client_cert_verifier(NodeCertVerifier::new())
        .with_single_cert(vec![key.certificate()], key.private_key())
        .map_err(tls_error)?;
    config.alpn_protocols = vec![secret.alpn()];
    config.max_early_data_size = 0;
    Ok(config)
}

/// The configuration for dialling peers.
pub(crate) fn client_config(
    key: &NodeKey,
    secret: &RpcSecret,
) -> Result<rustls::ClientConfig, Error> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_error)?
        .dangerous()
        .with_custom_certificate_verifier(NodeCertVerifier::new())
        .with_client_auth_cert(vec![key.certificate()], key.private_key())
        .map_err(tls_error)?;
    config.alpn_protocols = vec![secret.alpn()];
    config.enable_early_data = false;
    Ok(config)
}
