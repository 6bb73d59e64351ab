//! `bff.toml`: the `[bff]` table and its `[[bff.apis]]`, key names as issue 17's
//! contract fixes them. Paths in the file are relative to the file.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// How an API's calls are authorised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenMode {
    /// The signed-in user's access token; 401 without a session.
    User,
    /// A client-credentials token of the BFF itself (still behind the session and X-CSRF).
    Client,
    /// No token: the call is forwarded as it is.
    None,
}

/// One `[[bff.apis]]` entry: `{path}/x` is forwarded to `{upstream}/x`.
#[derive(Debug, Clone)]
pub struct Api {
    pub path: String,
    pub upstream: String,
    pub token: TokenMode,
}

/// The validated `[bff]` table.
#[derive(Debug, Clone)]
pub struct BffConfig {
    pub listen: String,
    /// Without a trailing slash.
    pub public_url: String,
    pub issuer: String,
    pub client_id: String,
    /// `client_secret_basic` with this secret, or …
    pub client_secret: Option<String>,
    /// … `private_key_jwt` with this PEM private key (resolved against the file).
    pub client_key: Option<PathBuf>,
    pub scopes: Vec<String>,
    pub static_dir: Option<PathBuf>,
    /// Seconds.
    pub session_lifetime: i64,
    /// Seconds.
    pub session_idle: i64,
    /// `sqlite://…` (resolved against the file's directory) or `postgres://…`.
    pub storage: String,
    pub dpop: bool,
    /// A local path; `/` unless the file says otherwise.
    pub post_logout_redirect: String,
    pub apis: Vec<Api>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    bff: Raw,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    listen: Option<String>,
    public_url: String,
    issuer: String,
    client_id: String,
    client_secret: Option<String>,
    client_key: Option<String>,
    scopes: Option<Vec<String>>,
    static_dir: Option<String>,
    session_lifetime: Option<String>,
    session_idle: Option<String>,
    storage: Option<String>,
    dpop: Option<bool>,
    post_logout_redirect: Option<String>,
    #[serde(default)]
    apis: Vec<RawApi>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    path: String,
    upstream: String,
    token: Option<TokenMode>,
}

/// Reads and checks `path`; every problem found is listed, one a line.
pub fn load(path: &Path) -> Result<BffConfig, String> {
    let text = std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    parse(&text, &base).map_err(|error| format!("{}: {error}", path.display()))
}

/// Parses the file's text; relative paths are resolved against `base`.
pub fn parse(text: &str, base: &Path) -> Result<BffConfig, String> {
    let file: File = toml::from_str(text).map_err(|error| error.to_string())?;
    let raw = file.bff;
    let mut errors = Vec::new();
    let duration = |key: &str, value: Option<&str>, default: i64, errors: &mut Vec<String>| match value {
        None => default,
        Some(text) => match humantime::parse_duration(text.trim()) {
            Ok(d) if d.as_secs() > 0 => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            _ => {
                errors.push(format!("bff.{key}: not a positive duration (\"8h\", \"30m\"): {text:?}"));
                default
            }
        },
    };
    let session_lifetime =
        duration("session_lifetime", raw.session_lifetime.as_deref(), 8 * 3600, &mut errors);
    let session_idle = duration("session_idle", raw.session_idle.as_deref(), 3600, &mut errors);
    let public_url = raw.public_url.trim_end_matches('/').to_owned();
    if url::Url::parse(&public_url).is_err() {
        errors.push("bff.public_url: not an absolute URL".to_owned());
    }
    let issuer = raw.issuer.trim_end_matches('/').to_owned();
    if url::Url::parse(&issuer).is_err() {
        errors.push("bff.issuer: not an absolute URL".to_owned());
    }
    match (&raw.client_secret, &raw.client_key) {
        (None, None) => errors.push(
            "bff.client_secret or bff.client_key: one is required (the BFF is a confidential client)"
                .to_owned(),
        ),
        (Some(_), Some(_)) => errors
            .push("bff.client_secret and bff.client_key: name one way to authenticate, not both".to_owned()),
        (Some(secret), None) if secret.is_empty() => errors.push("bff.client_secret: empty".to_owned()),
        _ => {}
    }
    let client_key = raw.client_key.as_ref().map(|key| base.join(key));
    let dpop = raw.dpop.unwrap_or(false);
    let scopes = raw.scopes.unwrap_or_else(|| vec!["openid".to_owned(), "profile".to_owned()]);
    if !scopes.iter().any(|s| s == "openid") {
        errors.push("bff.scopes: must contain \"openid\"".to_owned());
    }
    let storage = match raw.storage.as_deref() {
        None => format!("sqlite://{}?mode=rwc", base.join("bff.db").display()),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => url.to_owned(),
        Some(url) => match url.strip_prefix("sqlite://") {
            Some(file) => {
                let (file, query) = file.split_once('?').unwrap_or((file, ""));
                let resolved = if file == ":memory:" || Path::new(file).is_absolute() {
                    file.to_owned()
                } else {
                    base.join(file).display().to_string()
                };
                let query = if query.is_empty() { "mode=rwc" } else { query };
                format!("sqlite://{resolved}?{query}")
            }
            None => {
                errors.push("bff.storage: sqlite://… or postgres://…".to_owned());
                String::new()
            }
        },
    };
    let post_logout_redirect = raw.post_logout_redirect.unwrap_or_else(|| "/".to_owned());
    if !crate::is_local_path(&post_logout_redirect) {
        errors.push("bff.post_logout_redirect: must be a local path such as \"/\"".to_owned());
    }
    let mut apis = Vec::new();
    for (index, api) in raw.apis.into_iter().enumerate() {
        let path = api.path.trim_end_matches('/').to_owned();
        if !path.starts_with('/') || path.starts_with("/bff") || path.is_empty() {
            errors.push(format!("bff.apis[{index}].path: a local path such as \"/api\", not under /bff"));
        }
        if url::Url::parse(&api.upstream).is_err() {
            errors.push(format!("bff.apis[{index}].upstream: not an absolute URL"));
        }
        let upstream = api.upstream.trim_end_matches('/').to_owned();
        apis.push(Api { path, upstream, token: api.token.unwrap_or(TokenMode::User) });
    }
    if !errors.is_empty() {
        return Err(errors.join("\n"));
    }
    Ok(BffConfig {
        listen: raw.listen.unwrap_or_else(|| "127.0.0.1:3000".to_owned()),
        public_url,
        issuer,
        client_id: raw.client_id,
        client_secret: raw.client_secret,
        client_key,
        scopes,
        static_dir: raw.static_dir.map(|dir| base.join(dir)),
        session_lifetime,
        session_idle,
        storage,
        dpop,
        post_logout_redirect,
        apis,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn relative_paths_are_resolved_against_the_file() {
        let text = "[bff]\npublic_url = \"http://127.0.0.1:3000\"\nissuer = \"http://127.0.0.1:8080\"\n\
                    client_id = \"spa\"\nclient_secret = \"s\"\nstatic_dir = \"dist\"\nstorage = \"sqlite://bff.db\"\n\
                    session_lifetime = \"8h\"\nsession_idle = \"1h\"\n[[bff.apis]]\npath = \"/api\"\nupstream = \"http://127.0.0.1:5000\"\n";
        let config = parse(text, Path::new("/etc/app")).unwrap();
        assert_eq!(config.static_dir.unwrap(), Path::new("/etc/app/dist"));
        assert_eq!(config.storage, "sqlite:///etc/app/bff.db?mode=rwc");
        assert_eq!(config.session_lifetime, 8 * 3600);
        assert_eq!(config.apis[0].token, TokenMode::User);
    }

    #[test]
    fn the_client_authenticates_one_way_exactly() {
        let base =
            "[bff]\npublic_url = \"http://x\"\nissuer = \"http://y\"\nclient_id = \"spa\"\ndpop = true\n";
        let errors = parse(base, Path::new("/")).unwrap_err();
        assert!(errors.contains("one is required"), "{errors}");
        let both = format!("{base}client_secret = \"s\"\nclient_key = \"k.pem\"\n");
        assert!(parse(&both, Path::new("/")).unwrap_err().contains("not both"));
        let key = parse(&format!("{base}client_key = \"k.pem\"\n"), Path::new("/etc/app")).unwrap();
        assert_eq!(key.client_key.unwrap(), Path::new("/etc/app/k.pem"));
        assert!(key.dpop);
    }
}
