//! The single-table sections: `issuer`, `[server]`, `[storage]`, `[signing]`, `[tokens]`,
//! `[client_authentication]`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use tessera_core::model::AccessTokenFormat;
use tessera_core::secret::Secret;
use tessera_core::settings::{ClientAuthSettings, SigningSettings, TokenSettings};
use tessera_core::tokens::SigningAlgorithm;

use crate::decode::{Cx, Place, Seconds, Unknown};
use crate::{ConnectionLimits, ProxyConfig, ServerConfig, StorageConfig, TlsConfig};
use tessera_core::settings::MtlsSettings;

/// `[server] listen` when absent.
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// `[storage] url` when absent: an SQLite file beside the configuration file.
const DEFAULT_STORAGE_URL: &str = "sqlite://tessera.db";
/// `[storage] acquire_timeout` when absent: fail fast while the database is down.
const DEFAULT_ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Checks `issuer` and returns it without a trailing slash.
pub(crate) fn issuer(cx: &mut Cx, raw: Option<String>) -> String {
    let place = Place::root();
    let Some(raw) = raw else {
        cx.error(
            &place,
            "issuer",
            "missing required key: the public base URL, e.g. \"https://id.example.com\"",
        );
        return String::new();
    };
    match url::Url::parse(&raw) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            // RFC 8414 §2: the issuer has no query or fragment components.
            if url.query().is_some() || url.fragment().is_some() {
                cx.error(
                    &place,
                    "issuer",
                    format!("{raw:?} must not have a query or fragment (RFC 8414 §2)"),
                );
            }
            if !url.username().is_empty() || url.password().is_some() {
                cx.error(&place, "issuer", format!("{raw:?} must not contain user information"));
            }
        }
        _ => cx.error(&place, "issuer", format!("{raw:?} is not an absolute http or https URL")),
    }
    // `iss` must match byte for byte (RFC 9068 §4), and endpoints are issuer + "/path".
    raw.trim_end_matches('/').to_owned()
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawServer {
    listen: Option<String>,
    tls: Option<toml::Table>,
    proxy: Option<toml::Table>,
    client_cache_ttl: Option<Seconds>,
    session_lifetime: Option<Seconds>,
    header_read_timeout: Option<Seconds>,
    idle_timeout: Option<Seconds>,
    max_connections: Option<u32>,
    #[serde(flatten)]
    unknown: Unknown,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawTls {
    listen: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    client_ca: Option<String>,
    public_url: Option<String>,
    #[serde(flatten)]
    unknown: Unknown,
}

/// Timing settings of `[server]`, in seconds.
pub(crate) struct ServerTimings {
    pub client_cache_ttl: i64,
    pub session_lifetime: i64,
}

/// Checks `[server]`; returns it and its timings.
pub(crate) fn server(cx: &mut Cx, base_dir: &Path, table: toml::Table) -> (ServerConfig, ServerTimings) {
    let place = Place::section("server");
    let raw: RawServer = cx.decode(&place, table).unwrap_or_default();
    cx.unknown(&place, &raw.unknown);
    let listen = socket_addr(cx, &place, "listen", raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN));
    let timings = ServerTimings {
        client_cache_ttl: or_default(raw.client_cache_ttl, 30),
        session_lifetime: or_default(raw.session_lifetime, 8 * 3600),
    };
    let tls = raw.tls.and_then(|table| tls(cx, base_dir, table));
    let proxy = raw.proxy.and_then(|table| proxy(cx, base_dir, table));
    let defaults = ConnectionLimits::default();
    let mut duration = |key: &str, value: Option<Seconds>, default: std::time::Duration| match value {
        Some(Seconds(seconds)) if seconds < 1 => {
            cx.error(&place, key, "must be at least \"1s\"");
            default
        }
        Some(Seconds(seconds)) => std::time::Duration::from_secs(seconds.unsigned_abs()),
        None => default,
    };
    let header_read_timeout =
        duration("header_read_timeout", raw.header_read_timeout, defaults.header_read_timeout);
    let idle_timeout = duration("idle_timeout", raw.idle_timeout, defaults.idle_timeout);
    let max_connections = match raw.max_connections {
        Some(0) => {
            cx.error(&place, "max_connections", "must be at least 1");
            defaults.max_connections
        }
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
        None => defaults.max_connections,
    };
    let connections = ConnectionLimits { header_read_timeout, idle_timeout, max_connections };
    (ServerConfig { listen, tls, admin_listen: None, proxy, connections }, timings)
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawProxy {
    trusted_addresses: Option<Vec<String>>,
    client_cert_header: Option<String>,
    client_ca: Option<String>,
    #[serde(flatten)]
    unknown: Unknown,
}

/// RFC 9440 §2.2: the header a proxy passes the client certificate in.
const DEFAULT_CLIENT_CERT_HEADER: &str = "Client-Cert";

fn proxy(cx: &mut Cx, base_dir: &Path, table: toml::Table) -> Option<ProxyConfig> {
    let place = Place::subsection("server", "proxy");
    let raw: RawProxy = cx.decode(&place, table).unwrap_or_default();
    cx.unknown(&place, &raw.unknown);
    let Some(addresses) = raw.trusted_addresses.filter(|list| !list.is_empty()) else {
        cx.error(
            &place,
            "trusted_addresses",
            "missing required key: the proxies' IP addresses or CIDR ranges",
        );
        return None;
    };
    let mut trusted_addresses = Vec::new();
    for text in &addresses {
        match address_range(text) {
            Some(range) => trusted_addresses.push(range),
            None => cx.error(
                &place,
                "trusted_addresses",
                format!("{text:?} is not an IP address or CIDR range such as \"10.0.0.0/8\""),
            ),
        }
    }
    let client_cert_header = raw.client_cert_header.unwrap_or_else(|| DEFAULT_CLIENT_CERT_HEADER.to_owned());
    let valid_header = !client_cert_header.is_empty()
        && client_cert_header.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid_header {
        cx.error(&place, "client_cert_header", format!("{client_cert_header:?} is not an HTTP header name"));
    }
    Some(ProxyConfig {
        trusted_addresses,
        client_cert_header,
        client_ca: raw.client_ca.map(|path| base_dir.join(path)),
    })
}

/// `10.0.0.1` (a single address) or `10.0.0.0/8`.
fn address_range(text: &str) -> Option<(std::net::IpAddr, u8)> {
    let (address, prefix) = match text.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (text, None),
    };
    let address: std::net::IpAddr = address.trim().parse().ok()?;
    let longest = if address.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        Some(prefix) => prefix.trim().parse::<u8>().ok().filter(|prefix| *prefix <= longest)?,
        None => longest,
    };
    Some((address, prefix))
}

/// What discovery says about mutual TLS: enabled when certificates can arrive, with
/// endpoint aliases on the TLS listener's port when the issuer names another.
pub(crate) fn mtls_settings(issuer: &str, server: &ServerConfig) -> MtlsSettings {
    let enabled = server.tls.is_some() || server.proxy.is_some();
    let endpoint_base = server.tls.as_ref().and_then(|tls| {
        // Behind a load balancer every instance names the balancer's URL, not its own port.
        if let Some(public_url) = &tls.public_url {
            return Some(public_url.trim_end_matches('/').to_owned());
        }
        let mut url = url::Url::parse(issuer).ok()?;
        let issuer_port = url.port_or_known_default();
        url.set_scheme("https").ok()?;
        url.set_port(Some(tls.listen.port())).ok()?;
        let base = url.as_str().trim_end_matches('/').to_owned();
        // Same scheme and port: the issuer's own endpoints already take certificates.
        (base != issuer || issuer_port != Some(tls.listen.port())).then_some(base)
    });
    MtlsSettings { enabled, endpoint_base }
}

fn tls(cx: &mut Cx, base_dir: &Path, table: toml::Table) -> Option<TlsConfig> {
    let place = Place::subsection("server", "tls");
    let raw: RawTls = cx.decode(&place, table).unwrap_or_default();
    cx.unknown(&place, &raw.unknown);
    let mut required = |key: &str, value: Option<String>| {
        if value.is_none() {
            cx.error(&place, key, "missing required key");
        }
        value
    };
    let (listen, cert, key) =
        (required("listen", raw.listen), required("cert", raw.cert), required("key", raw.key));
    if let Some(public_url) = &raw.public_url {
        let valid = url::Url::parse(public_url).is_ok_and(|url| {
            url.scheme() == "https"
                && url.host().is_some()
                && url.query().is_none()
                && url.fragment().is_none()
        });
        if !valid {
            cx.error(&place, "public_url", format!("{public_url:?} is not an absolute https URL"));
        }
    }
    let listen = socket_addr(cx, &place, "listen", &listen?);
    Some(TlsConfig {
        public_url: raw.public_url.map(|url| url.trim_end_matches('/').to_owned()),
        listen,
        cert: base_dir.join(cert?),
        key: base_dir.join(key?),
        client_ca: raw.client_ca.map(|path| base_dir.join(path)),
    })
}

fn socket_addr(cx: &mut Cx, place: &Place, key: &str, text: &str) -> SocketAddr {
    text.parse().unwrap_or_else(|_| {
        cx.error(place, key, format!("{text:?} is not an IP address and port such as \"127.0.0.1:8080\""));
        SocketAddr::from(([127, 0, 0, 1], 8080))
    })
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawStorage {
    url: Option<String>,
    acquire_timeout: Option<Seconds>,
    #[serde(flatten)]
    unknown: Unknown,
}

/// Checks `[storage]`, resolving a relative SQLite path against `base_dir`.
pub(crate) fn storage(cx: &mut Cx, base_dir: &Path, table: toml::Table) -> StorageConfig {
    let place = Place::section("storage");
    let raw: RawStorage = cx.decode(&place, table).unwrap_or_default();
    cx.unknown(&place, &raw.unknown);
    let acquire_timeout = match raw.acquire_timeout {
        Some(Seconds(seconds)) if seconds < 1 => {
            cx.error(&place, "acquire_timeout", "must be at least \"1s\"");
            DEFAULT_ACQUIRE_TIMEOUT
        }
        Some(Seconds(seconds)) => std::time::Duration::from_secs(seconds.unsigned_abs()),
        None => DEFAULT_ACQUIRE_TIMEOUT,
    };
    let url = raw.url.unwrap_or_else(|| DEFAULT_STORAGE_URL.to_owned());
    if let Some(rest) = url.strip_prefix("sqlite:") {
        return StorageConfig { url: resolve_sqlite(base_dir, rest), acquire_timeout };
    }
    if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
        cx.error(&place, "url", "expected a sqlite:// or postgres:// URL");
    }
    StorageConfig { url, acquire_timeout }
}

/// `sqlite://tessera.db` names a file relative to the configuration file, not to
/// whatever directory the server happens to start in.
fn resolve_sqlite(base_dir: &Path, rest: &str) -> String {
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (file, query) = match rest.split_once('?') {
        Some((file, query)) => (file, Some(query)),
        None => (rest, None),
    };
    let file = if file.is_empty() || file == ":memory:" || Path::new(file).is_absolute() {
        PathBuf::from(file)
    } else {
        base_dir.join(file)
    };
    let mut url = format!("sqlite://{}", file.display());
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawTokens {
    access_token_lifetime: Option<Seconds>,
    id_token_lifetime: Option<Seconds>,
    authorization_code_lifetime: Option<Seconds>,
    refresh_token_lifetime: Option<Seconds>,
    access_token_format: Option<AccessTokenFormat>,
    #[serde(flatten)]
    unknown: Unknown,
}

/// Checks `[tokens]`.
pub(crate) fn tokens(cx: &mut Cx, table: toml::Table) -> TokenSettings {
    let place = Place::section("tokens");
    let raw: RawTokens = cx.decode(&place, table).unwrap_or_default();
    cx.unknown(&place, &raw.unknown);
    let access_token_lifetime =
        positive(cx, &place, "access_token_lifetime", raw.access_token_lifetime, 3_600);
    TokenSettings {
        access_token_lifetime,
        // Raised to the clients' overrides once they are read.
        longest_access_token_lifetime: access_token_lifetime,
        id_token_lifetime: positive(cx, &place, "id_token_lifetime", raw.id_token_lifetime, 300),
        authorization_code_lifetime: positive(
            cx,
            &place,
            "authorization_code_lifetime",
            raw.authorization_code_lifetime,
            60,
        ),
        refresh_token_lifetime: positive(
            cx,
            &place,
            "refresh_token_lifetime",
            raw.refresh_token_lifetime,
            30 * 86_400,
        ),
        access_token_format: raw.access_token_format.unwrap_or_default(),
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawSigning {
    algorithm: Option<String>,
    algorithms: Option<Vec<String>>,
    rotation: Option<Seconds>,
    announce: Option<Seconds>,
    retain: Option<Seconds>,
    encryption_key: Option<String>,
    cache_ttl: Option<Seconds>,
    #[serde(flatten)]
    unknown: Unknown,
}

/// Checks `[signing]`. `retain` against token lifetimes is checked once clients are known.
pub(crate) fn signing(cx: &mut Cx, table: toml::Table) -> SigningSettings {
    let place = Place::section("signing");
    let raw: RawSigning = cx.decode(&place, table).unwrap_or_default();
    cx.unknown(&place, &raw.unknown);
    let algorithms = signing_algorithms(cx, &place, raw.algorithm.as_deref(), raw.algorithms.as_deref());
    let encryption_key = raw.encryption_key.and_then(|key| {
        if key.is_empty() {
            cx.error(&place, "encryption_key", "must not be empty; leave it out to store keys unencrypted");
            return None;
        }
        Some(Secret::new(key))
    });
    SigningSettings {
        algorithm: algorithms.first().copied().unwrap_or(SigningAlgorithm::Es256),
        algorithms,
        rotation: positive(cx, &place, "rotation", raw.rotation, 90 * 86_400),
        announce: or_default(raw.announce, 14 * 86_400),
        retain: or_default(raw.retain, 14 * 86_400),
        encryption_key,
        cache_ttl: or_default(raw.cache_ttl, 60),
    }
}

/// `algorithms` (the first signs by default), or the older single `algorithm`; RS256
/// is added when missing, since OpenID Connect Discovery §3 requires it for ID tokens.
fn signing_algorithms(
    cx: &mut Cx,
    place: &Place,
    single: Option<&str>,
    list: Option<&[String]>,
) -> Vec<SigningAlgorithm> {
    let (key, names): (&str, Vec<&str>) = match (single, list) {
        (Some(_), Some(_)) => {
            cx.error(place, "algorithm", "set either `algorithm` or `algorithms`, not both");
            return vec![SigningAlgorithm::Es256, SigningAlgorithm::Rs256];
        }
        (Some(single), None) => ("algorithm", vec![single]),
        (None, Some(list)) => ("algorithms", list.iter().map(String::as_str).collect()),
        (None, None) => ("algorithms", vec!["ES256"]),
    };
    if names.is_empty() {
        cx.error(place, key, "needs at least one algorithm, e.g. [\"ES256\", \"RS256\"]");
    }
    let mut algorithms = Vec::new();
    for name in names {
        match name.parse::<SigningAlgorithm>() {
            Ok(algorithm) if algorithms.contains(&algorithm) => {
                cx.error(place, key, format!("`{name}` is listed twice"));
            }
            Ok(algorithm) => algorithms.push(algorithm),
            Err(message) => cx.error(place, key, message),
        }
    }
    if algorithms.is_empty() {
        algorithms.push(SigningAlgorithm::Es256);
    }
    if !algorithms.contains(&SigningAlgorithm::Rs256) {
        algorithms.push(SigningAlgorithm::Rs256);
    }
    algorithms
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawClientAuth {
    clock_skew: Option<Seconds>,
    assertion_max_lifetime: Option<Seconds>,
    #[serde(flatten)]
    unknown: Unknown,
}

/// Checks `[client_authentication]`.
pub(crate) fn client_authentication(cx: &mut Cx, table: toml::Table) -> ClientAuthSettings {
    let place = Place::section("client_authentication");
    let raw: RawClientAuth = cx.decode(&place, table).unwrap_or_default();
    cx.unknown(&place, &raw.unknown);
    ClientAuthSettings {
        clock_skew: or_default(raw.clock_skew, 60),
        assertion_max_lifetime: positive(
            cx,
            &place,
            "assertion_max_lifetime",
            raw.assertion_max_lifetime,
            // Authlib signs assertions valid for an hour (exp = iat + 3600); the jti is
            // remembered until exp, so a longer window costs no replay safety.
            3_600,
        ),
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawCiba {
    notification_webhook: Option<String>,
    #[serde(flatten)]
    unknown: Unknown,
}

/// Checks `[ciba]`; returns the webhook that announces new requests, if any.
pub(crate) fn ciba(cx: &mut Cx, table: toml::Table) -> Option<String> {
    let place = Place::section("ciba");
    let raw: RawCiba = cx.decode(&place, table).unwrap_or_default();
    cx.unknown(&place, &raw.unknown);
    if let Some(Err(message)) = raw.notification_webhook.as_deref().map(crate::decode::http_url) {
        cx.error(&place, "notification_webhook", message);
    }
    raw.notification_webhook
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawDpop {
    require_nonce: bool,
    #[serde(flatten)]
    unknown: Unknown,
}

/// Checks `[dpop]`; returns whether proofs need a server nonce (RFC 9449 §8).
pub(crate) fn dpop(cx: &mut Cx, table: toml::Table) -> bool {
    let place = Place::section("dpop");
    let raw: RawDpop = cx.decode(&place, table).unwrap_or_default();
    cx.unknown(&place, &raw.unknown);
    raw.require_nonce
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawRegistration {
    enabled: bool,
    initial_access_token: Option<String>,
    allowed_scopes: Vec<String>,
    unused_client_lifetime: Option<Seconds>,
    #[serde(flatten)]
    unknown: Unknown,
}

/// Checks `[registration]` (RFC 7591): off unless `enabled`; the scopes it allows must
/// be defined ones.
pub(crate) fn registration(
    cx: &mut Cx,
    table: toml::Table,
    resources: &tessera_core::catalog::Resources,
) -> tessera_core::registration::RegistrationSettings {
    let place = Place::section("registration");
    let raw: RawRegistration = cx.decode(&place, table).unwrap_or_default();
    cx.unknown(&place, &raw.unknown);
    defined_scopes(cx, &place, &raw.allowed_scopes, resources);
    let initial_access_token = raw.initial_access_token.and_then(|token| {
        if token.len() < 16 {
            cx.error(
                &place,
                "initial_access_token",
                "must be at least 16 characters; leave it out for open registration",
            );
            return None;
        }
        Some(Secret::new(token))
    });
    if raw.enabled && raw.allowed_scopes.is_empty() {
        cx.error(&place, "allowed_scopes", "name the scopes registered clients may ask for");
    }
    tessera_core::registration::RegistrationSettings {
        enabled: raw.enabled,
        initial_access_token,
        allowed_scopes: raw.allowed_scopes,
        unused_client_lifetime: positive(
            cx,
            &place,
            "unused_client_lifetime",
            raw.unused_client_lifetime,
            30 * 86_400,
        ),
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawMetadataDocuments {
    enabled: bool,
    allow_http_loopback: bool,
    allowed_scopes: Vec<String>,
    #[serde(flatten)]
    unknown: Unknown,
}

/// Checks `[client_id_metadata_documents]`: off unless `enabled`; defined scopes only.
pub(crate) fn metadata_documents(
    cx: &mut Cx,
    table: toml::Table,
    resources: &tessera_core::catalog::Resources,
) -> tessera_core::metadata_documents::MetadataDocumentSettings {
    let place = Place::section("client_id_metadata_documents");
    let raw: RawMetadataDocuments = cx.decode(&place, table).unwrap_or_default();
    cx.unknown(&place, &raw.unknown);
    defined_scopes(cx, &place, &raw.allowed_scopes, resources);
    if raw.enabled && raw.allowed_scopes.is_empty() {
        cx.error(&place, "allowed_scopes", "name the scopes such clients may ask for");
    }
    if raw.allow_http_loopback {
        cx.warning(
            &place,
            "allow_http_loopback",
            "http client_id URLs on loopback hosts are accepted: development only",
        );
    }
    tessera_core::metadata_documents::MetadataDocumentSettings {
        enabled: raw.enabled,
        allow_http_loopback: raw.allow_http_loopback,
        allowed_scopes: raw.allowed_scopes,
    }
}

/// Each of `scopes` must be `offline_access` or defined in the resources.
fn defined_scopes(
    cx: &mut Cx,
    place: &Place,
    scopes: &[String],
    resources: &tessera_core::catalog::Resources,
) {
    for scope in scopes {
        // Clients nobody vetted must never administer the server.
        if scope == tessera_core::admin::ADMIN_SCOPE {
            cx.error(
                place,
                "allowed_scopes",
                "`tessera:admin` is for the operator's own clients, never unvetted ones",
            );
            continue;
        }
        if !tessera_core::model::scope_defined(resources, scope) {
            cx.error(
                place,
                "allowed_scopes",
                format!("`{scope}` is not defined in [[api_scopes]] or [[identity_resources]]"),
            );
        }
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawAdmin {
    listen: Option<String>,
    #[serde(flatten)]
    unknown: Unknown,
}

/// Checks `[admin]`; returns the administration API's own listener, if any.
pub(crate) fn admin(cx: &mut Cx, table: toml::Table) -> Option<SocketAddr> {
    let place = Place::section("admin");
    let raw: RawAdmin = cx.decode(&place, table).unwrap_or_default();
    cx.unknown(&place, &raw.unknown);
    raw.listen.map(|text| socket_addr(cx, &place, "listen", &text))
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawSignIn {
    require_mfa: bool,
    #[serde(flatten)]
    unknown: Unknown,
}

/// Checks `[sign_in]`; returns `require_mfa`.
pub(crate) fn sign_in(cx: &mut Cx, table: toml::Table) -> bool {
    let place = Place::section("sign_in");
    let raw: RawSignIn = cx.decode(&place, table).unwrap_or_default();
    cx.unknown(&place, &raw.unknown);
    raw.require_mfa
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawPasskeys {
    rp_id: Option<String>,
    #[serde(flatten)]
    unknown: Unknown,
}

/// Checks `[passkeys]`; returns the WebAuthn relying party id: `rp_id`, else the
/// issuer's host. Browsers refuse WebAuthn on IP-literal origins, so an issuer on an IP
/// address has passkeys off (a warning); `rp_id` must be the issuer's host or a parent
/// domain of it (WebAuthn Level 2 §4 "RP ID": a registrable domain suffix of the
/// origin's host).
pub(crate) fn passkeys(cx: &mut Cx, table: toml::Table, issuer: &str) -> Option<String> {
    let place = Place::section("passkeys");
    let raw: RawPasskeys = cx.decode(&place, table).unwrap_or_default();
    cx.unknown(&place, &raw.unknown);
    let host = url::Url::parse(issuer).ok()?.host()?.to_owned();
    let url::Host::Domain(host) = host else {
        cx.warning(
            &Place::root(),
            "issuer",
            "passkeys are off: browsers refuse WebAuthn on an IP address; use a host name \
             (http://localhost:PORT for development)",
        );
        return None;
    };
    let Some(rp_id) = raw.rp_id else { return Some(host) };
    let rp_id = rp_id.to_ascii_lowercase();
    if host == rp_id || host.ends_with(&format!(".{rp_id}")) {
        Some(rp_id)
    } else {
        cx.error(&place, "rp_id", format!("must be the issuer's host `{host}` or a parent domain of it"));
        None
    }
}

/// A lifetime: zero would make whatever it governs expire as it is issued.
pub(crate) fn positive(cx: &mut Cx, place: &Place, key: &str, value: Option<Seconds>, default: i64) -> i64 {
    match value {
        None => default,
        Some(Seconds(0)) => {
            cx.error(place, key, "must be longer than zero");
            default
        }
        Some(Seconds(seconds)) => seconds,
    }
}

/// A duration where zero is meaningful (no caching, no skew); durations never parse negative.
fn or_default(value: Option<Seconds>, default: i64) -> i64 {
    value.map_or(default, |Seconds(seconds)| seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_sqlite_paths_are_resolved_against_the_config_directory() {
        let base = Path::new("/etc/tessera");
        assert_eq!(resolve_sqlite(base, "//tessera.db"), "sqlite:///etc/tessera/tessera.db");
        assert_eq!(resolve_sqlite(base, "data/t.db?mode=rwc"), "sqlite:///etc/tessera/data/t.db?mode=rwc");
        assert_eq!(resolve_sqlite(base, "///var/lib/t.db"), "sqlite:///var/lib/t.db");
        assert_eq!(resolve_sqlite(base, "//:memory:"), "sqlite://:memory:");
    }
}
