//! The address a request comes from, for per-address throttles. Behind a trusted
//! proxy every connection comes from the proxy, so there the client is the nearest
//! address in `X-Forwarded-For` that is not itself a trusted proxy (each proxy
//! appends the address it received the request from; only the part appended by
//! trusted proxies can be believed).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use crate::AppState;
use crate::error::HttpError;
use crate::tls::{TlsConnection, address_in};

/// The client's IP address.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, HttpError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |ConnectInfo(peer)| peer.ip());
        // The TLS listener is reached directly, never through the proxy.
        let direct = parts.extensions.get::<TlsConnection>().is_some();
        let Some(proxy) = app.tls.proxy.as_ref().filter(|_| !direct) else { return Ok(Self(peer)) };
        let mut client = peer;
        if !address_in(&proxy.trusted_addresses, client) {
            return Ok(Self(client));
        }
        let forwarded =
            parts.headers.get_all("x-forwarded-for").iter().filter_map(|value| value.to_str().ok());
        let hops: Vec<&str> = forwarded.flat_map(|value| value.split(',')).map(str::trim).collect();
        for hop in hops.iter().rev() {
            let Ok(address) = hop.parse::<IpAddr>() else { break };
            client = address;
            if !address_in(&proxy.trusted_addresses, address) {
                break;
            }
        }
        Ok(Self(client))
    }
}
