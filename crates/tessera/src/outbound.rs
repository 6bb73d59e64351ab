//! Outbound HTTP: fetching client JWK Sets for `private_key_jwt` (RFC 7523), and
//! notifications (CIBA ping delivery, the operator's webhook).

use std::time::Duration;

use async_trait::async_trait;
use tessera_core::client_auth::JwksSource;
use tessera_core::notify::Notifier;

/// The largest JWK Set accepted from a client.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// Fetches JWK Sets and sends notifications with reqwest: short timeouts, no
/// redirects, bounded responses.
#[derive(Debug, Clone)]
pub struct HttpJwksSource {
    client: reqwest::Client,
    /// `jwks_uri`s the configuration file declares: fetched wherever they point (an
    /// operator may use an internal host). Any other (a client that registered itself,
    /// or one named by a metadata document) is fetched from public addresses only.
    trusted: std::sync::Arc<std::collections::HashSet<String>>,
}

impl HttpJwksSource {
    /// A fetcher with a 5 s timeout.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (no TLS roots).
    pub fn new(trusted: std::collections::HashSet<String>) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(3))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tessera/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client, trusted: std::sync::Arc::new(trusted) })
    }
}

#[async_trait]
impl JwksSource for HttpJwksSource {
    async fn fetch(&self, uri: &str) -> Result<serde_json::Value, String> {
        let client = if self.trusted.contains(uri) {
            self.client.clone()
        } else {
            let url = url::Url::parse(uri).map_err(|e| format!("not a URL: {e}"))?;
            if url.scheme() != "https" {
                return Err("not https".into());
            }
            public_client(&url, false).await?
        };
        let mut response = client.get(uri).send().await.map_err(|e| format!("fetch failed: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        if response.content_length().is_some_and(|len| len > MAX_JWKS_BYTES as u64) {
            return Err("JWK Set too large".into());
        }
        // Read chunk by chunk and stop at the cap: a hostile host may send no length, or
        // a false one, and an endless body.
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("read failed: {e}"))? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err("JWK Set too large".into());
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| format!("not JSON: {e}"))
    }
}

#[async_trait]
impl Notifier for HttpJwksSource {
    async fn post_json(
        &self,
        url: &str,
        bearer: Option<&str>,
        body: &serde_json::Value,
    ) -> Result<(), String> {
        let mut request = self.client.post(url).json(body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| format!("send failed: {e}"))?;
        if response.status().is_success() { Ok(()) } else { Err(format!("HTTP {}", response.status())) }
    }
}

/// The largest client ID metadata document accepted (the draft suggests 5 KB).
const MAX_DOCUMENT_BYTES: usize = 16 * 1024;

/// Fetches client ID metadata documents. Anyone can make the server fetch a URL by
/// naming it as `client_id`, so the fetch goes only to public addresses: the name is
/// resolved here, every address it has is checked (loopback, private, link-local,
/// shared, reserved and documentation ranges are refused), and the connection is
/// pinned to a checked address, so a second lookup cannot point it elsewhere (DNS
/// rebinding). No redirects, a 5 s timeout, 16 KiB at most.
#[derive(Debug, Clone, Default)]
pub struct HttpDocumentSource;

#[async_trait]
impl tessera_core::metadata_documents::DocumentSource for HttpDocumentSource {
    async fn fetch(
        &self,
        url: &url::Url,
        allow_http_loopback: bool,
    ) -> Result<tessera_core::metadata_documents::FetchedDocument, String> {
        let loopback_name = matches!(url.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"));
        if url.scheme() != "https" && !(allow_http_loopback && loopback_name) {
            return Err("not https".into());
        }
        let client = public_client(url, allow_http_loopback).await?;
        let mut response = client
            .get(url.as_str())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("fetch failed: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        let max_age = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|value| value.to_str().ok())
            .and_then(cache_lifetime);
        if response.content_length().is_some_and(|len| len > MAX_DOCUMENT_BYTES as u64) {
            return Err("document too large".into());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("read failed: {e}"))? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err("document too large".into());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(tessera_core::metadata_documents::FetchedDocument { body, max_age })
    }
}

/// An HTTP client that reaches `url` only at a public address: the name is resolved
/// here, every address it has is checked (loopback, private, link-local, shared,
/// reserved and documentation ranges are refused; loopback only when
/// `allow_loopback` and the URL names a loopback host), and the connection is pinned to
/// a checked address, so a second lookup cannot point it elsewhere (DNS rebinding). No
/// redirects, a 5 s timeout.
async fn public_client(url: &url::Url, allow_loopback: bool) -> Result<reqwest::Client, String> {
    let host = url.host().ok_or("no host")?;
    let port = url.port_or_known_default().ok_or("no port")?;
    let loopback_allowed =
        allow_loopback && matches!(url.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"));
    let addresses: Vec<std::net::IpAddr> = match host {
        url::Host::Ipv4(ip) => vec![ip.into()],
        url::Host::Ipv6(ip) => vec![ip.into()],
        url::Host::Domain(name) => {
            tokio::time::timeout(Duration::from_secs(3), tokio::net::lookup_host((name, port)))
                .await
                .map_err(|_| "name resolution timed out".to_owned())?
                .map_err(|e| format!("name resolution failed: {e}"))?
                .map(|address| address.ip())
                .collect()
        }
    };
    let acceptable = |ip: &std::net::IpAddr| if loopback_allowed { ip.is_loopback() } else { is_public(*ip) };
    if addresses.is_empty() || !addresses.iter().all(acceptable) {
        return Err(format!("{host} resolves to an address this server does not fetch from: {addresses:?}"));
    }
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(3))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("tessera/", env!("CARGO_PKG_VERSION")));
    if let url::Host::Domain(name) = host {
        builder = builder.resolve(name, std::net::SocketAddr::new(addresses[0], port));
    }
    builder.build().map_err(|e| format!("client: {e}"))
}

/// Seconds `Cache-Control` allows keeping a response: `max-age`, or 0 for
/// `no-store`/`no-cache`; `None` when it says neither.
fn cache_lifetime(value: &str) -> Option<i64> {
    let mut max_age = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(0);
        }
        if let Some(seconds) = lower.strip_prefix("max-age=") {
            max_age = seconds.trim_matches('"').parse::<i64>().ok();
        }
    }
    max_age
}

/// Whether `ip` is a public unicast address: not loopback, private (RFC 1918, RFC
/// 4193), link-local, shared (RFC 6598), unspecified, multicast, broadcast, reserved
/// or documentation, also when written as an IPv4-mapped IPv6 address.
fn is_public(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(ip) => {
            let [a, b, ..] = ip.octets();
            !(ip.is_private()
                || ip.is_loopback()
                || ip.is_link_local()
                || ip.is_broadcast()
                || ip.is_documentation()
                || ip.is_unspecified()
                || ip.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && ip.octets()[2] == 0)
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        std::net::IpAddr::V6(ip) => {
            if let Some(v4) = ip.to_ipv4_mapped() {
                return is_public(v4.into());
            }
            let first = ip.segments()[0];
            !(ip.is_loopback()
                || ip.is_unspecified()
                || ip.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first == 0x2001 && ip.segments()[1] == 0x0db8)
                || (first == 0x0064 && ip.segments()[1] == 0xff9b)
                || ip.segments()[..6] == [0, 0, 0, 0, 0, 0])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_fetched_from() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.0.8",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "2001:db8::1",
            "64:ff9b::a00:1",
            "::127.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "::ffff:1.1.1.1"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn cache_headers_give_the_lifetime() {
        assert_eq!(cache_lifetime("public, max-age=600"), Some(600));
        assert_eq!(cache_lifetime("no-store"), Some(0));
        assert_eq!(cache_lifetime("max-age=60, no-cache"), Some(0));
        assert_eq!(cache_lifetime("public"), None);
    }
}
