//! Tessera's configuration: a TOML file (the contract in `shared/spec/config.md`) plus
//! `TESSERA__SECTION__KEY` environment overrides, checked in full and turned into the
//! core's settings, resources and clients.
//!
//! Every problem is reported, each naming the file, the table and the key, so that one
//! run of `tessera serve` lists everything to fix. This crate reads files and the
//! environment; of Tessera's crates it depends only on `tessera-core`, and it must not
//! depend on HTTP or a store.

mod clients;
mod decode;
mod env;
mod error;
mod resources;
mod sections;
#[cfg(test)]
mod test_support;
mod users;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use tessera_core::catalog::Resources;
use tessera_core::model::Client;
use tessera_core::secret::Secret;
use tessera_core::settings::{Settings, SigningSettings, TokenSettings};

pub use error::{ConfigError, ConfigErrors};

use decode::{Cx, Place, Unknown, human};

/// A checked configuration, ready to start a server with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the configuration came from (the file path), for messages.
    pub source: String,
    /// What the protocol core needs.
    pub settings: Settings,
    /// Where to listen.
    pub server: ServerConfig,
    /// Where to keep state.
    pub storage: StorageConfig,
    /// Scopes and the APIs and identity data they grant.
    pub resources: Resources,
    /// The registered clients, secrets already hashed.
    pub clients: Vec<Client>,
    /// Local accounts to put in the store.
    pub users: Vec<UserSeed>,
    /// What is accepted but weak (short `value` secrets), each naming file, table and
    /// key: `tessera serve` logs them at every start, `check-config` prints them.
    pub warnings: Vec<ConfigError>,
}

/// `[server]`: the listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The plain HTTP listener.
    pub listen: SocketAddr,
    /// The optional TLS listener (needed for mutual TLS, RFC 8705).
    pub tls: Option<TlsConfig>,
    /// `[admin] listen`: the administration API's own listener; `None` serves it on
    /// the main one.
    pub admin_listen: Option<SocketAddr>,
    /// A TLS-terminating proxy trusted to pass client certificates on.
    pub proxy: Option<ProxyConfig>,
    /// Timeouts and the cap that keep slow or idle clients from holding connections.
    pub connections: ConnectionLimits,
}

/// `[server] header_read_timeout`, `idle_timeout`, `max_connections`: applied to the
/// plain and the TLS listener alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// A request's headers must arrive within this (after the TLS handshake).
    pub header_read_timeout: std::time::Duration,
    /// A kept-alive connection with no request in flight closes after this.
    pub idle_timeout: std::time::Duration,
    /// Connections open at once, across both listeners; more wait in the backlog.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: std::time::Duration::from_secs(10),
            idle_timeout: std::time::Duration::from_secs(60),
            max_connections: 4096,
        }
    }
}

/// `[server.proxy]`: a TLS-terminating proxy in front of Tessera that forwards the
/// client's certificate in a header (RFC 9440 `Client-Cert` by default). The header
/// is believed only on connections from `trusted_addresses`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    /// The proxies' addresses, each an IP address or a CIDR range.
    pub trusted_addresses: Vec<(std::net::IpAddr, u8)>,
    /// The header carrying the certificate.
    pub client_cert_header: String,
    /// The CA for `tls_client_auth` behind the proxy; `[server.tls] client_ca` if unset.
    pub client_ca: Option<PathBuf>,
}

/// `[server.tls]`. Paths are resolved against the configuration file's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// The TLS listener's address.
    pub listen: SocketAddr,
    /// The server certificate chain (PEM).
    pub cert: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
    /// The CA that issues client certificates for `tls_client_auth`.
    pub client_ca: Option<PathBuf>,
    /// The public base URL of the TLS endpoints (a load balancer's), for
    /// `mtls_endpoint_aliases`; default: the issuer's host at `listen`'s port.
    pub public_url: Option<String>,
}

/// `[storage]`.
#[derive(Clone, PartialEq, Eq)]
pub struct StorageConfig {
    /// `sqlite://…` (a relative path already resolved against the configuration file's
    /// directory) or `postgres://…`.
    pub url: String,
    /// How long a request waits for a PostgreSQL connection before it is answered
    /// `temporarily_unavailable` (`acquire_timeout`, default 2 s).
    pub acquire_timeout: std::time::Duration,
}

impl std::fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A database URL may carry a password: `postgres://user:password@host/db`.
        let url = match url::Url::parse(&self.url) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("[redacted]"));
                url.to_string()
            }
            _ => self.url.clone(),
        };
        f.debug_struct("StorageConfig").field("url", &url).finish()
    }
}

/// A `[[users]]` entry: a local account for the store. Exactly one of `password` and
/// `password_hash` is set.
#[derive(Clone)]
pub struct UserSeed {
    /// The sign-in name.
    pub username: String,
    /// A plain password (development), to be hashed when stored.
    pub password: Option<Secret>,
    /// An argon2id PHC string (`$argon2id$…`).
    pub password_hash: Option<String>,
    /// The stable `sub`; generated when absent.
    pub subject: Option<String>,
    /// Claims released through identity scopes.
    pub claims: serde_json::Map<String, serde_json::Value>,
}

impl std::fmt::Debug for UserSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserSeed")
            .field("username", &self.username)
            .field("password", &self.password)
            .field("password_hash", &self.password_hash.as_ref().map(|_| "[redacted]"))
            .field("subject", &self.subject)
            .field("claims", &self.claims)
            .finish()
    }
}

/// The file's top level; each section is checked on its own so that an error in one
/// does not hide those in the others.
#[derive(Default, Deserialize)]
#[serde(default)]
struct RawRoot {
    issuer: Option<String>,
    server: toml::Table,
    storage: toml::Table,
    signing: toml::Table,
    tokens: toml::Table,
    client_authentication: toml::Table,
    ciba: toml::Table,
    dpop: toml::Table,
    registration: toml::Table,
    client_id_metadata_documents: toml::Table,
    admin: toml::Table,
    sign_in: toml::Table,
    passkeys: toml::Table,
    api_scopes: Vec<toml::Table>,
    api_resources: Vec<toml::Table>,
    identity_resources: Vec<toml::Table>,
    clients: Vec<toml::Table>,
    users: Vec<toml::Table>,
    #[serde(flatten)]
    unknown: Unknown,
}

/// Reads and checks the configuration file at `path`, with the `TESSERA__*` variables of
/// the process environment applied over it. Relative paths in it are relative to its
/// directory.
///
/// # Errors
/// Every problem found: an unreadable file, a syntax error, or each invalid key.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| {
        ConfigErrors(vec![ConfigError {
            file: origin.clone(),
            table: String::new(),
            key: String::new(),
            message: format!("cannot read the file: {error}"),
        }])
    })?;
    // Absolute, so that paths stay right whatever directory the server later runs in.
    let base_dir = std::path::absolute(path)
        .ok()
        .and_then(|path| path.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let (env, errors) = env::from_process();
    check(&text, &origin, &base_dir, &env, errors)
}

/// Checks configuration `text` as if read from `origin` in `base_dir`, with the
/// `TESSERA__*` entries of `env` as overrides (other entries are ignored).
///
/// # Errors
/// Every problem found: a syntax error, or each invalid key.
pub fn load_str(
    text: &str,
    origin: &str,
    base_dir: &Path,
    env: &[(String, String)],
) -> Result<Config, ConfigErrors> {
    check(text, origin, base_dir, env, Vec::new())
}

fn check(
    text: &str,
    origin: &str,
    base_dir: &Path,
    env: &[(String, String)],
    mut errors: Vec<ConfigError>,
) -> Result<Config, ConfigErrors> {
    let mut root = match toml::from_str::<toml::Table>(text) {
        Ok(root) => root,
        Err(error) => {
            errors.push(syntax_error(origin, text, &error));
            return Err(ConfigErrors(errors));
        }
    };
    let overrides = env::apply(&mut root, env, &mut errors);
    let mut cx = Cx::new(origin, errors, overrides);
    let root_place = Place::root();
    let raw: RawRoot = cx.decode(&root_place, root).unwrap_or_default();
    cx.unknown(&root_place, &raw.unknown);

    let issuer = sections::issuer(&mut cx, raw.issuer);
    let (mut server, timings) = sections::server(&mut cx, base_dir, raw.server);
    server.admin_listen = sections::admin(&mut cx, raw.admin);
    let storage = sections::storage(&mut cx, base_dir, raw.storage);
    let signing = sections::signing(&mut cx, raw.signing);
    let mut tokens = sections::tokens(&mut cx, raw.tokens);
    let client_authentication = sections::client_authentication(&mut cx, raw.client_authentication);
    let ciba_notification_webhook = sections::ciba(&mut cx, raw.ciba);
    let dpop_require_nonce = sections::dpop(&mut cx, raw.dpop);
    let resources = resources::resources(
        &mut cx,
        resources::RawResources {
            api_scopes: raw.api_scopes,
            api_resources: raw.api_resources,
            identity_resources: raw.identity_resources,
        },
    );
    let clients = clients::clients(&mut cx, raw.clients, &resources, &signing.algorithms);
    let registration = sections::registration(&mut cx, raw.registration, &resources);
    let metadata_documents =
        sections::metadata_documents(&mut cx, raw.client_id_metadata_documents, &resources);
    let users = users::users(&mut cx, raw.users);
    let require_mfa = sections::sign_in(&mut cx, raw.sign_in);
    let passkey_rp_id = sections::passkeys(&mut cx, raw.passkeys, &issuer);
    tokens.longest_access_token_lifetime = clients
        .iter()
        .filter_map(|client| client.access_token_lifetime)
        .fold(tokens.access_token_lifetime, i64::max);
    check_retain(&mut cx, &signing, &tokens, &clients);

    if !cx.errors.is_empty() {
        return Err(ConfigErrors(cx.errors));
    }
    let mtls = sections::mtls_settings(&issuer, &server);
    Ok(Config {
        source: origin.to_owned(),
        settings: Settings {
            issuer,
            tokens,
            signing,
            client_authentication,
            client_cache_ttl: timings.client_cache_ttl,
            session_lifetime: timings.session_lifetime,
            ciba_notification_webhook,
            dpop_require_nonce,
            mtls,
            cors_origins: clients::cors_origins(&clients),
            registration,
            metadata_documents,
            require_mfa,
            passkey_rp_id,
        },
        server,
        storage,
        resources,
        clients,
        users,
        warnings: cx.warnings,
    })
}

/// A key stays published `retain` after it stops signing; a token it signed that lives
/// longer could no longer be verified.
fn check_retain(cx: &mut Cx, signing: &SigningSettings, tokens: &TokenSettings, clients: &[Client]) {
    let mut longest = (tokens.access_token_lifetime, "[tokens] access_token_lifetime".to_owned());
    if tokens.id_token_lifetime > longest.0 {
        longest = (tokens.id_token_lifetime, "[tokens] id_token_lifetime".to_owned());
    }
    for client in clients {
        if let Some(lifetime) = client.access_token_lifetime
            && lifetime > longest.0
        {
            longest = (lifetime, format!("the access_token_lifetime of client `{}`", client.client_id));
        }
    }
    if signing.retain < longest.0 {
        cx.error(
            &Place::section("signing"),
            "retain",
            format!(
                "{} is shorter than {} ({}): tokens would outlive the key that signed them",
                human(signing.retain),
                longest.1,
                human(longest.0)
            ),
        );
    }
}

/// The parser's message on one line, with the line and column it points at.
fn syntax_error(origin: &str, text: &str, error: &toml::de::Error) -> ConfigError {
    let message = error.message().lines().map(str::trim).collect::<Vec<_>>().join("; ");
    let message = match error.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |last| last.chars().count()) + 1;
            format!("TOML syntax error at line {line}, column {column}: {message}")
        }
        None => format!("TOML syntax error: {message}"),
    };
    ConfigError { file: origin.to_owned(), table: String::new(), key: String::new(), message }
}

#[cfg(test)]
mod interop_tests;
#[cfg(test)]
mod tests;

/// One client given as JSON with the keys of a `[[clients]]` table (the admin API's
/// body), checked by the same rules as the file; errors as `(key, message)` pairs.
///
/// # Errors
/// Every problem found, per key.
pub fn client_from_json(
    value: serde_json::Value,
    resources: &tessera_core::catalog::Resources,
    algorithms: &[tessera_core::tokens::SigningAlgorithm],
) -> Result<tessera_core::model::Client, Vec<(String, String)>> {
    let table: toml::Table = match serde_json::from_value(value) {
        Ok(table) => table,
        Err(error) => return Err(vec![(String::new(), format!("not a client object: {error}"))]),
    };
    let mut cx = Cx::new("request", Vec::new(), Vec::new());
    let clients = clients::clients(&mut cx, vec![table], resources, algorithms);
    if !cx.errors.is_empty() {
        return Err(cx.errors.into_iter().map(|error| (error.key, error.message)).collect());
    }
    clients.into_iter().next().ok_or_else(|| vec![(String::new(), "not a client".to_owned())])
}
