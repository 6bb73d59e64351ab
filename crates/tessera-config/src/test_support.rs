//! Builders shared by the tests: a small valid configuration to add to or break.

use std::path::Path;

use crate::{Config, ConfigError, load_str};

/// A minimal valid configuration: one API scope owned by one API, and `openid`.
pub(crate) const BASE: &str = r#"
issuer = "https://id.example.com"

[[api_scopes]]
name = "api1.read"

[[api_resources]]
name = "api1"
scopes = ["api1.read"]
secrets = [{ value = "api1-secret" }]

[[identity_resources]]
name = "openid"
"#;

/// A confidential `authorization_code` client, to which `extra` lines are added.
pub(crate) fn web_client(id: &str, extra: &str) -> String {
    format!(
        "\n[[clients]]\nclient_id = \"{id}\"\nallowed_grant_types = [\"authorization_code\"]\n\
         client_secrets = [{{ value = \"{id}-secret\" }}]\nredirect_uris = [\"https://app.example.com/cb\"]\n\
         allowed_scopes = [\"openid\", \"api1.read\"]\n{extra}\n"
    )
}

/// A confidential `client_credentials` client with `body` as its lines after `client_id`.
pub(crate) fn client(id: &str, body: &str) -> String {
    format!("\n[[clients]]\nclient_id = \"{id}\"\n{body}\n")
}

/// Loads `text` with `env`, from `/etc/tessera/tessera.toml`.
pub(crate) fn load_env(text: &str, env: &[(&str, &str)]) -> Result<Config, Vec<ConfigError>> {
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    load_str(text, "tessera.toml", Path::new("/etc/tessera"), &env).map_err(|errors| errors.0)
}

/// Loads `text`, failing the test with every error when it does not load.
pub(crate) fn load_ok(text: &str) -> Config {
    match load_env(text, &[]) {
        Ok(config) => config,
        Err(errors) => panic!("expected the configuration to load:\n{errors:#?}"),
    }
}

/// The errors `text` produces; fails the test when it loads.
pub(crate) fn errors_of(text: &str) -> Vec<ConfigError> {
    match load_env(text, &[]) {
        Ok(_) => panic!("expected configuration errors"),
        Err(errors) => errors,
    }
}

/// Whether some error names exactly this table and key.
pub(crate) fn has_error(errors: &[ConfigError], table: &str, key: &str) -> bool {
    errors.iter().any(|error| error.table == table && error.key == key)
}

/// The message of the error at this table and key.
pub(crate) fn message(errors: &[ConfigError], table: &str, key: &str) -> String {
    errors
        .iter()
        .find(|error| error.table == table && error.key == key)
        .map(|error| error.message.clone())
        .unwrap_or_else(|| panic!("no error at {table} `{key}` in {errors:#?}"))
}
