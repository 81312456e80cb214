//! TLS for the proxymux listener: the server configuration (the certificate
//! the cluster CA signed, HTTP/1.1 only, rustls with ring) and the handshake
//! of each connection.

use crate::identity::IdentityMaterial;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::server::TlsStream;

/// A client that has not finished its handshake by then is dropped, so a
/// stalled one cannot hold a connection slot.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot configure the proxymux's TLS: {0}")]
pub struct TlsError(#[from] tokio_rustls::rustls::Error);

/// The acceptor for the proxymux's connections.
pub fn acceptor(identity: &IdentityMaterial) -> Result<TlsAcceptor, TlsError> {
    // An explicit provider: the process-wide default is ambiguous when
    // several rustls backends are linked.
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let chain = vec![CertificateDer::from(identity.tls_cert_der().to_vec())];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.tls_key_der().to_vec()));
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    // The server side speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The TLS session of an accepted connection, or `None` when the handshake
/// failed (logged; the client sees its own error) or took too long.
pub async fn handshake(acceptor: &TlsAcceptor, stream: TcpStream) -> Option<TlsStream<TcpStream>> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(error)) => {
            tracing::debug!(%error, "proxymux TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!("proxymux TLS handshake timed out");
            None
        }
    }
}
