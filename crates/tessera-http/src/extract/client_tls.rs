//! The client certificate of a request (RFC 8705): from the TLS listener's handshake,
//! or from a trusted TLS-terminating proxy's header. A header from any other peer is
//! ignored, so a client cannot claim a certificate it does not hold.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use tessera_core::OAuthError;
use tessera_core::model::ClientCertificate;
use tracing::debug;

use crate::AppState;
use crate::error::HttpError;
use crate::tls::{TlsConnection, address_in, client_certificate, forwarded_certificate};

/// How a request reached Tessera, as far as TLS goes.
#[derive(Debug, Default)]
pub struct ClientTls {
    /// The client's certificate, possession proven by the handshake (ours or the proxy's).
    pub certificate: Option<ClientCertificate>,
    /// Whether the request came in on the TLS listener, whose endpoints are the
    /// `mtls_endpoint_aliases` (RFC 8705 §5).
    pub on_tls_listener: bool,
}

impl ClientTls {
    /// The URL of the endpoint at `path` as this request addressed it (for DPoP `htu`
    /// and client assertion audiences).
    #[must_use]
    pub fn endpoint(&self, settings: &tessera_core::settings::Settings, path: &str) -> String {
        if self.on_tls_listener { settings.mtls_endpoint(path) } else { settings.endpoint(path) }
    }
}

impl FromRequestParts<AppState> for ClientTls {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, HttpError> {
        let now = app.clock.now();
        let unreadable = |reason: String| {
            debug!(%reason, "client certificate refused");
            HttpError::from(OAuthError::invalid_request("the client certificate could not be read"))
        };
        if let Some(connection) = parts.extensions.get::<TlsConnection>() {
            let certificate =
                client_certificate(&connection.peer_certificates, app.tls.client_ca.as_ref(), now)
                    .map_err(unreadable)?;
            return Ok(Self { certificate, on_tls_listener: true });
        }
        let Some(proxy) = &app.tls.proxy else { return Ok(Self::default()) };
        let Some(value) = parts.headers.get(&proxy.header) else { return Ok(Self::default()) };
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(peer)| peer.ip());
        if !peer.is_some_and(|peer| address_in(&proxy.trusted_addresses, peer)) {
            debug!(?peer, header = %proxy.header, "client certificate header from an untrusted peer ignored");
            return Ok(Self::default());
        }
        let value = value.to_str().map_err(|_| unreadable("not ASCII".into()))?;
        let der = forwarded_certificate(value).map_err(unreadable)?;
        let certificate = client_certificate(&[der], proxy.client_ca.as_ref(), now).map_err(unreadable)?;
        Ok(Self { certificate, on_tls_listener: false })
    }
}
