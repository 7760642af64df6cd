//! TLS of the coordinator's client ports. [`TlsFiles`] reads `tls_cert_file` and
//! `tls_key_file` once: the Flight SQL port gets tonic's configuration of them, the Trino HTTP
//! port a [`TlsListener`].

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::{CoordinatorError, CoordinatorSettings};

/// How long a client has to complete its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The most TLS handshakes under way at once; more connections wait to be accepted.
const MAX_HANDSHAKES: usize = 256;

/// The certificate chain and private key, as PEM, and the HTTP port's acceptor made of them.
pub struct TlsFiles {
    cert: Vec<u8>,
    key: Vec<u8>,
    acceptor: TlsAcceptor,
}

/// The key is a secret: only the sizes show.
impl std::fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsFiles")
            .field("cert_bytes", &self.cert.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

impl TlsFiles {
    /// The files of `settings`, when both are set.
    pub fn load(settings: &CoordinatorSettings) -> Result<Option<Self>, CoordinatorError> {
        let (cert, key) = match (&settings.tls_cert_file, &settings.tls_key_file) {
            (None, None) => return Ok(None),
            (Some(cert), Some(key)) => (cert, key),
            _ => {
                return Err(CoordinatorError::Settings(
                    "TLS needs both tls_cert_file and tls_key_file".into(),
                ));
            }
        };
        let read = |path: &Path, setting: &str| {
            std::fs::read(path).map_err(|e| {
                CoordinatorError::Settings(format!(
                    "{setting}: cannot read {}: {e}",
                    path.display()
                ))
            })
        };
        let (cert, key) = (read(cert, "tls_cert_file")?, read(key, "tls_key_file")?);
        // Made now, so that a bad file stops the coordinator at start, naming it.
        let acceptor = acceptor(&cert, &key)?;
        Ok(Some(Self {
            cert,
            key,
            acceptor,
        }))
    }

    /// The Flight SQL port's TLS.
    pub fn tonic(&self) -> tonic::transport::ServerTlsConfig {
        let identity = tonic::transport::Identity::from_pem(&self.cert, &self.key);
        tonic::transport::ServerTlsConfig::new().identity(identity)
    }

    /// The HTTP port's TLS (HTTP/1.1).
    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }
}

/// A TLS acceptor (HTTP/1.1) of a PEM certificate chain and key.
fn acceptor(cert: &[u8], key: &[u8]) -> Result<TlsAcceptor, CoordinatorError> {
    let bad = |setting: &str, e: &dyn std::fmt::Display| {
        CoordinatorError::Settings(format!("{setting}: {e}"))
    };
    let chain = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad("tls_cert_file", &e))?;
    if chain.is_empty() {
        return Err(bad("tls_cert_file", &"no PEM certificate in the file"));
    }
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| bad("tls_key_file", &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("TLS", &e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| bad("tls_key_file", &e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// An [`axum::serve::Listener`] of TLS connections. Handshakes run in tasks of their own, each
/// within [`HANDSHAKE_TIMEOUT`], so a client that stalls in one holds up no other.
pub struct TlsListener {
    addr: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
}

impl TlsListener {
    pub fn new(listener: TcpListener, acceptor: TlsAcceptor) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let (sender, ready) = mpsc::channel(64);
        let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
        tokio::spawn(async move {
            loop {
                let Ok(permit) = handshakes.clone().acquire_owned().await else {
                    return;
                };
                let (tcp, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: wait, as axum's listener does.
                        tracing::warn!(%addr, "accepting a connection failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                // The server is gone: stop accepting.
                if sender.is_closed() {
                    return;
                }
                let _ = tcp.set_nodelay(true);
                let (acceptor, handoff) = (acceptor.clone(), sender.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = handoff.send((stream, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self { addr, ready })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accepting task ended with the server; nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}
