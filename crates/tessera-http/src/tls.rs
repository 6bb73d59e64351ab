//! The TLS listener and client certificates (RFC 8705).
//!
//! axum's `serve` hands no TLS session to handlers, so the listener has its own accept
//! loop (tokio-rustls + hyper-util) that puts the peer's certificate chain into each
//! request's extensions. The handshake asks every client for a certificate but
//! trusts none by itself: it checks only that the client holds the certificate's
//! private key. Whether the chain leads to the client CA is judged per request, since
//! `self_signed_tls_client_auth` clients present certificates no CA issued.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use tessera_core::Timestamp;
use tessera_core::model::ClientCertificate;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info};

/// How long a client may take to finish the handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why TLS could not be set up: unreadable PEM, no key, a key that does not fit.
pub type TlsError = Box<dyn std::error::Error + Send + Sync>;

/// The only crypto provider Tessera's TLS uses (DEPENDENCIES.md trap 2: another crate
/// may install `ring` as the process default).
fn crypto() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Set on every request that arrived over the TLS listener.
#[derive(Debug, Clone)]
pub struct TlsConnection {
    /// The client's certificate chain, end entity first; empty when it sent none.
    pub peer_certificates: Arc<[CertificateDer<'static>]>,
}

/// Judges whether a presented chain leads to the configured client CA.
#[derive(Clone)]
pub struct ClientCa {
    verifier: Arc<dyn ClientCertVerifier>,
}

impl std::fmt::Debug for ClientCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientCa")
    }
}

impl ClientCa {
    /// A verifier for the CA certificates in `pem`.
    ///
    /// # Errors
    /// When the PEM holds no usable certificate.
    pub fn from_pem(pem: &[u8]) -> Result<Self, TlsError> {
        let mut roots = RootCertStore::empty();
        for certificate in CertificateDer::pem_slice_iter(pem) {
            roots.add(certificate?)?;
        }
        if roots.is_empty() {
            return Err("the client CA file holds no certificate".into());
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), crypto()).build()?;
        Ok(Self { verifier })
    }

    /// Whether `chain` (end entity first) is a valid path to the CA at `now` (RFC 5280 §6).
    fn issued(&self, chain: &[CertificateDer<'static>], now: Timestamp) -> bool {
        let Some((end_entity, intermediates)) = chain.split_first() else { return false };
        let Ok(seconds) = u64::try_from(now) else { return false };
        let now = UnixTime::since_unix_epoch(Duration::from_secs(seconds));
        match self.verifier.verify_client_cert(end_entity, intermediates, now) {
            Ok(_) => true,
            Err(error) => {
                debug!(%error, "client certificate does not chain to the client CA");
                false
            }
        }
    }
}

/// Reads a client certificate into what the core matches and binds.
///
/// # Errors
/// When the end-entity certificate cannot be parsed.
pub fn client_certificate(
    chain: &[CertificateDer<'static>],
    client_ca: Option<&ClientCa>,
    now: Timestamp,
) -> Result<Option<ClientCertificate>, String> {
    let Some(end_entity) = chain.first() else { return Ok(None) };
    let issued = client_ca.is_some_and(|ca| ca.issued(chain, now));
    ClientCertificate::from_der(end_entity, issued).map(Some)
}

/// Asks for a client certificate, accepts any (proof of possession still checked),
/// and names the client CA as a hint so clients pick the right certificate.
#[derive(Debug)]
struct AnyClientCertificate {
    algorithms: WebPkiSupportedAlgorithms,
    hints: Vec<DistinguishedName>,
}

impl ClientCertVerifier for AnyClientCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        // Clients with secrets, assertions or none at all use the TLS listener too.
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Trust is decided per request (tls_client_auth needs the CA, the self-signed
        // method a registered thumbprint); here only possession, below.
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, certificate, signature, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, certificate, signature, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The TLS listener's configuration: the server's certificate chain and key (PEM),
/// HTTP/2 and HTTP/1.1, and a request for client certificates naming `client_ca`'s
/// subjects as acceptable issuers.
///
/// # Errors
/// When the PEM cannot be read or the key does not match.
pub fn server_config(
    cert_pem: &[u8],
    key_pem: &[u8],
    client_ca: Option<&ClientCa>,
) -> Result<rustls::ServerConfig, TlsError> {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cert_pem).collect::<Result<_, _>>()?;
    if chain.is_empty() {
        return Err("the certificate file holds no certificate".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)?;
    let crypto = crypto();
    let hints = client_ca.map(|ca| ca.verifier.root_hint_subjects().to_vec()).unwrap_or_default();
    let verifier = AnyClientCertificate { algorithms: crypto.signature_verification_algorithms, hints };
    let mut config = rustls::ServerConfig::builder_with_provider(crypto)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Serves `router` over TLS on `listener` until `shutdown` completes, with the
/// default connection limits of its own (see [`serve_limited`]).
///
/// # Errors
/// Never for a single connection's failure; only if the listener's address is gone.
pub async fn serve(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let connections = crate::connections::Connections::new(crate::connections::ConnectionLimits::default());
    serve_limited(listener, config, router, connections, shutdown).await
}

/// Serves `router` over TLS on `listener` until `shutdown` completes, sharing the
/// connection cap and timeouts of `connections` with the plain listener. Each request
/// carries [`TlsConnection`] and `ConnectInfo<SocketAddr>`.
///
/// # Errors
/// Never for a single connection's failure; only if the listener's address is gone.
pub async fn serve_limited(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    router: Router,
    connections: crate::connections::Connections,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let acceptor = TlsAcceptor::from(config);
    // The handshake is part of reading a request's head: a client gets no longer for it
    // than for the headers (and never more than HANDSHAKE_TIMEOUT).
    let handshake_timeout = connections.limits().header_read_timeout.min(HANDSHAKE_TIMEOUT);
    info!(address = %listener.local_addr()?, "serving TLS");
    let handshake = move |stream: crate::connections::Tracked<tokio::net::TcpStream>,
                          peer: std::net::SocketAddr| {
        let acceptor = acceptor.clone();
        async move {
            let stream = match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    debug!(%peer, %error, "TLS handshake failed");
                    return None;
                }
                Err(_) => {
                    debug!(%peer, "TLS handshake timed out");
                    return None;
                }
            };
            let peer_certificates: Arc<[CertificateDer<'static>]> =
                stream.get_ref().1.peer_certificates().map(<[_]>::to_vec).unwrap_or_default().into();
            let mut extensions = axum::http::Extensions::new();
            extensions.insert(TlsConnection { peer_certificates });
            Some((stream, extensions))
        }
    };
    crate::connections::serve(listener, router, connections, handshake, shutdown).await
}

/// Reads the certificate a trusted TLS-terminating proxy forwarded: RFC 9440's
/// `:base64-DER:` byte sequence, or a URL-encoded PEM as nginx's
/// `$ssl_client_escaped_cert` gives it.
///
/// # Errors
/// When the value is neither.
pub fn forwarded_certificate(value: &str) -> Result<CertificateDer<'static>, String> {
    let value = value.trim();
    if let Some(encoded) = value.strip_prefix(':').and_then(|rest| rest.strip_suffix(':')) {
        use base64::Engine as _;
        let der = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| "the client certificate header is not base64".to_owned())?;
        return Ok(CertificateDer::from(der));
    }
    let pem = url::form_urlencoded::parse(format!("v={}", value.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, pem)| pem.into_owned())
        .unwrap_or_default();
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|_| "the client certificate header is neither RFC 9440 nor a PEM certificate".to_owned())
}

/// Whether `address` is within one of `ranges` (an address and a prefix length).
#[must_use]
pub fn address_in(ranges: &[(std::net::IpAddr, u8)], address: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    let address = match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    };
    ranges.iter().any(|&(network, prefix)| match (network, address) {
        (IpAddr::V4(network), IpAddr::V4(address)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(network) & mask == u32::from(address) & mask
        }
        (IpAddr::V6(network), IpAddr::V6(address)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(network) & mask == u128::from(address) & mask
        }
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_ranges() {
        let ranges = [("10.0.0.0".parse().unwrap(), 8), ("192.168.1.7".parse().unwrap(), 32)];
        assert!(address_in(&ranges, "10.200.3.4".parse().unwrap()));
        assert!(address_in(&ranges, "192.168.1.7".parse().unwrap()));
        assert!(address_in(&ranges, "::ffff:10.0.0.1".parse().unwrap()));
        assert!(!address_in(&ranges, "192.168.1.8".parse().unwrap()));
        assert!(!address_in(&ranges, "11.0.0.1".parse().unwrap()));
        let everything = [("::".parse().unwrap(), 0)];
        assert!(address_in(&everything, "2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn forwarded_certificates_in_both_encodings() {
        assert_eq!(forwarded_certificate(":AQID:").unwrap().as_ref(), &[1, 2, 3]);
        assert!(forwarded_certificate(":not base64!:").is_err());
        assert!(forwarded_certificate("garbage").is_err());
    }
}
