//! Whole-file behaviour: the example, defaults, overrides, and collecting every error.

use std::path::Path;

use tessera_core::model::{AccessTokenFormat, AuthMethod, ClientCredential, GrantType};
use tessera_core::tokens::SigningAlgorithm;

use super::*;
use crate::test_support::{BASE, client, errors_of, has_error, load_env, load_ok, message, web_client};

fn quickstart_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart.toml")
}

#[test]
fn the_quickstart_example_loads_with_its_clients_and_scopes() {
    let config = load(&quickstart_path()).unwrap_or_else(|errors| panic!("{errors}"));
    let ids: Vec<&str> = config.clients.iter().map(|client| client.client_id.as_str()).collect();
    assert_eq!(ids, ["web-app", "native-app", "device-app", "service-a", "teller", "gateway"]);
    let scopes: Vec<&str> = config.resources.api_scopes.iter().map(|scope| scope.name.as_str()).collect();
    // `tessera:admin` (for the admin API's `tessera-admin` resource) is in every configuration.
    assert_eq!(scopes, ["api1.read", "api1.write", "tessera:admin"]);
    let identity: Vec<&str> = config.resources.identity_resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(identity, ["openid", "profile", "email"]);
    assert_eq!(config.resources.api_resources[0].name, "api1");
    assert_eq!(config.settings.issuer, "http://127.0.0.1:8080");
    assert_eq!(config.users[0].username, "alice");
    assert_eq!(config.users[0].subject.as_deref(), Some("a1b2c3"));
    assert!(config.storage.url.starts_with("sqlite:///"), "{}", config.storage.url);
    assert!(config.storage.url.ends_with("/examples/tessera.db"), "{}", config.storage.url);
}

#[test]
fn the_quickstart_clients_have_the_expected_shape() {
    let config = load(&quickstart_path()).unwrap_or_else(|errors| panic!("{errors}"));
    let by_id = |id: &str| config.clients.iter().find(|client| client.client_id.as_str() == id).unwrap();

    let web = by_id("web-app");
    assert_eq!(web.client_name, "Server-Side Web Application");
    assert_eq!(web.auth_methods, [AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost]);
    assert!(web.require_consent && web.allow_offline_access);

    let native = by_id("native-app");
    assert!(native.is_public());
    assert!(native.credentials.is_empty());

    let device = by_id("device-app");
    assert_eq!(device.allowed_grant_types, [GrantType::DeviceCode]);
    assert!(device.require_consent);

    let service = by_id("service-a");
    assert_eq!(service.client_name, "service-a");
    assert_eq!(service.allowed_grant_types, [GrantType::ClientCredentials]);
    assert!(!service.require_consent);
    let [ClientCredential::SaltedSecret { argon2id, expires: None }] = service.credentials.as_slice() else {
        panic!("expected one salted shared secret: {:?}", service.credentials);
    };
    assert!(tessera_core::password::verify_password("service-a-secret", argon2id));
}

#[test]
fn no_plain_secret_survives_in_the_loaded_configuration() {
    let config = load(&quickstart_path()).unwrap_or_else(|errors| panic!("{errors}"));
    let debug = format!("{config:?}");
    for secret in ["service-a-secret", "web-app-secret", "api1-secret", "alice-password-1"] {
        assert!(!debug.contains(secret), "{secret} appears in {debug}");
    }
}

#[test]
fn a_missing_section_takes_the_documented_defaults() {
    let config = load_ok(BASE);
    let settings = &config.settings;
    assert_eq!(settings.tokens.access_token_lifetime, 3_600);
    assert_eq!(settings.tokens.id_token_lifetime, 300);
    assert_eq!(settings.tokens.authorization_code_lifetime, 60);
    assert_eq!(settings.tokens.refresh_token_lifetime, 30 * 86_400);
    assert_eq!(settings.tokens.access_token_format, AccessTokenFormat::Jwt);
    assert_eq!(settings.signing.algorithm, SigningAlgorithm::Es256);
    assert_eq!(settings.signing.rotation, 90 * 86_400);
    assert_eq!(settings.signing.announce, 14 * 86_400);
    assert_eq!(settings.signing.retain, 14 * 86_400);
    assert_eq!(settings.signing.cache_ttl, 60);
    assert!(settings.signing.encryption_key.is_none());
    assert_eq!(settings.client_authentication.clock_skew, 60);
    assert_eq!(settings.client_authentication.assertion_max_lifetime, 3_600);
    assert_eq!(settings.client_cache_ttl, 30);
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.server.tls, None);
    assert_eq!(config.storage.url, "sqlite:///etc/tessera/tessera.db");
}

#[test]
fn durations_in_the_file_become_seconds() {
    let config = load_ok(&format!(
        "{BASE}\n[tokens]\naccess_token_lifetime = \"10m\"\nrefresh_token_lifetime = \"7d\"\n\
         [signing]\nretain = \"1h\"\nrotation = \"30d\"\n[server]\nclient_cache_ttl = \"90s\""
    ));
    assert_eq!(config.settings.tokens.access_token_lifetime, 600);
    assert_eq!(config.settings.tokens.refresh_token_lifetime, 7 * 86_400);
    assert_eq!(config.settings.signing.retain, 3_600);
    assert_eq!(config.settings.signing.rotation, 30 * 86_400);
    assert_eq!(config.settings.client_cache_ttl, 90);
}

#[test]
fn a_bad_duration_names_its_table_and_key() {
    let errors =
        errors_of(&format!("{BASE}\n[tokens]\nid_token_lifetime = \"soon\"\nrefresh_token_lifetime = 3600"));
    assert!(message(&errors, "[tokens]", "id_token_lifetime").contains("`soon` is not a duration"));
    assert!(message(&errors, "[tokens]", "refresh_token_lifetime").contains("a duration such as"));
}

#[test]
fn a_zero_lifetime_is_an_error() {
    let errors = errors_of(&format!("{BASE}\n[tokens]\naccess_token_lifetime = \"0s\""));
    assert!(has_error(&errors, "[tokens]", "access_token_lifetime"), "{errors:#?}");
}

#[test]
fn every_section_option_is_read() {
    let config = load_ok(&format!(
        "{BASE}\n[signing]\nalgorithm = \"EdDSA\"\nencryption_key = \"k\"\ncache_ttl = \"5m\"\n\
         [tokens]\naccess_token_format = \"reference\"\n\
         [client_authentication]\nclock_skew = \"10s\"\nassertion_max_lifetime = \"2m\"\n\
         [server]\nlisten = \"0.0.0.0:9000\""
    ));
    assert_eq!(config.settings.signing.algorithm, SigningAlgorithm::EdDsa);
    assert_eq!(config.settings.signing.encryption_key.as_ref().map(|key| key.expose()), Some("k"));
    assert_eq!(config.settings.signing.cache_ttl, 300);
    assert_eq!(config.settings.tokens.access_token_format, AccessTokenFormat::Reference);
    assert_eq!(config.settings.client_authentication.clock_skew, 10);
    assert_eq!(config.settings.client_authentication.assertion_max_lifetime, 120);
    assert_eq!(config.server.listen.to_string(), "0.0.0.0:9000");
}

#[test]
fn an_unknown_algorithm_or_token_format_is_an_error() {
    let errors = errors_of(&format!(
        "{BASE}\n[signing]\nalgorithm = \"HS256\"\n[tokens]\naccess_token_format = \"opaque\""
    ));
    assert!(has_error(&errors, "[signing]", "algorithm"), "{errors:#?}");
    assert!(message(&errors, "[tokens]", "access_token_format").contains("reference"));
}

#[test]
fn the_issuer_is_required() {
    let errors = errors_of(&BASE.replace("issuer = \"https://id.example.com\"", ""));
    assert!(has_error(&errors, "", "issuer"), "{errors:#?}");
}

#[test]
fn the_issuer_must_be_an_http_url_without_query_or_fragment() {
    for issuer in
        ["id.example.com", "ftp://id.example.com", "https://id.example.com/?a=b", "https://id.example.com#x"]
    {
        let errors = errors_of(&BASE.replace("https://id.example.com", issuer));
        assert!(has_error(&errors, "", "issuer"), "{issuer}: {errors:#?}");
    }
}

#[test]
fn a_trailing_slash_is_stripped_from_the_issuer() {
    let config = load_ok(&BASE.replace("https://id.example.com", "https://id.example.com/tenant/"));
    assert_eq!(config.settings.issuer, "https://id.example.com/tenant");
}

#[test]
fn tls_paths_are_resolved_against_the_config_directory() {
    let config = load_ok(&format!(
        "{BASE}\n[server.tls]\nlisten = \"127.0.0.1:8443\"\ncert = \"tls/server.pem\"\nkey = \"/keys/server.key\"\n\
         client_ca = \"tls/ca.pem\""
    ));
    let tls = config.server.tls.unwrap();
    assert_eq!(tls.listen.to_string(), "127.0.0.1:8443");
    assert_eq!(tls.cert, Path::new("/etc/tessera/tls/server.pem"));
    assert_eq!(tls.key, Path::new("/keys/server.key"));
    assert_eq!(tls.client_ca.as_deref(), Some(Path::new("/etc/tessera/tls/ca.pem")));
}

#[test]
fn a_tls_listener_on_another_port_gives_mtls_endpoint_aliases() {
    let tls = "[server.tls]\nlisten = \"0.0.0.0:8443\"\ncert = \"s.pem\"\nkey = \"s.key\"";
    let config = load_ok(&format!("{BASE}\n{tls}"));
    assert!(config.settings.mtls.enabled);
    assert_eq!(config.settings.mtls.endpoint_base.as_deref(), Some("https://id.example.com:8443"));
    assert_eq!(config.settings.mtls_endpoint("/token"), "https://id.example.com:8443/token");
    // The issuer itself on the TLS listener: its endpoints already take certificates.
    let same = BASE.replace("https://id.example.com", "https://id.example.com:8443");
    let config = load_ok(&format!("{same}\n{tls}"));
    assert_eq!(config.settings.mtls.endpoint_base, None);
    assert!(!load_ok(BASE).settings.mtls.enabled);
}

#[test]
fn a_trusted_proxy_section_is_checked() {
    let config = load_ok(&format!(
        "{BASE}\n[server.proxy]\ntrusted_addresses = [\"10.0.0.0/8\", \"::1\"]\nclient_ca = \"ca.pem\""
    ));
    let proxy = config.server.proxy.unwrap();
    assert_eq!(
        proxy.trusted_addresses,
        vec![("10.0.0.0".parse().unwrap(), 8), ("::1".parse().unwrap(), 128)]
    );
    assert_eq!(proxy.client_cert_header, "Client-Cert");
    assert_eq!(proxy.client_ca.as_deref(), Some(Path::new("/etc/tessera/ca.pem")));
    assert!(config.settings.mtls.enabled);
    assert_eq!(config.settings.mtls.endpoint_base, None);

    let errors = errors_of(&format!("{BASE}\n[server.proxy]\nclient_cert_header = \"X Cert\""));
    assert!(has_error(&errors, "[server.proxy]", "trusted_addresses"), "{errors:#?}");
    let errors = errors_of(&format!(
        "{BASE}\n[server.proxy]\ntrusted_addresses = [\"10.0.0.0/33\", \"proxy.internal\"]\nclient_cert_header = \"X Cert\""
    ));
    assert!(has_error(&errors, "[server.proxy]", "trusted_addresses"), "{errors:#?}");
    assert!(has_error(&errors, "[server.proxy]", "client_cert_header"), "{errors:#?}");
}

#[test]
fn a_tls_section_without_certificate_names_the_missing_keys() {
    let errors = errors_of(&format!("{BASE}\n[server.tls]\nlisten = \"127.0.0.1:8443\""));
    assert!(has_error(&errors, "[server.tls]", "cert"), "{errors:#?}");
    assert!(has_error(&errors, "[server.tls]", "key"), "{errors:#?}");
}

#[test]
fn a_listen_address_must_be_ip_and_port() {
    let errors = errors_of(&format!("{BASE}\n[server]\nlisten = \"localhost\""));
    assert!(has_error(&errors, "[server]", "listen"), "{errors:#?}");
}

#[test]
fn postgres_urls_are_kept_and_other_schemes_refused() {
    let url = "postgres://tessera@db.internal/tessera";
    let config = load_ok(&format!("{BASE}\n[storage]\nurl = \"{url}\""));
    assert_eq!(config.storage.url, url);
    let errors = errors_of(&format!("{BASE}\n[storage]\nurl = \"mysql://db/t\""));
    assert!(has_error(&errors, "[storage]", "url"), "{errors:#?}");
}

#[test]
fn a_storage_password_is_not_in_debug_output() {
    let config = load_ok(&format!("{BASE}\n[storage]\nurl = \"postgres://tessera:hunter2@db/tessera\""));
    assert!(!format!("{config:?}").contains("hunter2"));
}

#[test]
fn unknown_keys_are_reported_with_their_table() {
    let errors = errors_of(&format!(
        "colour = \"red\"\n{BASE}\n[tokens]\naccess_token_lifetme = \"1h\"\n[server.tls]\nlisten = \"127.0.0.1:1\"\n\
         cert = \"c\"\nkey = \"k\"\nciphers = []\n{}",
        web_client("web", "client_secret = \"x\"\nclient_secrets = [{ value = \"s\", note = \"old\" }]")
            .replace("client_secrets = [{ value = \"web-secret\" }]\n", "")
    ));
    assert!(has_error(&errors, "", "colour"), "{errors:#?}");
    assert!(has_error(&errors, "[tokens]", "access_token_lifetme"), "{errors:#?}");
    assert!(has_error(&errors, "[server.tls]", "ciphers"), "{errors:#?}");
    assert!(has_error(&errors, "[clients] client_id=\"web\"", "client_secret"), "{errors:#?}");
    assert!(has_error(&errors, "[clients] client_id=\"web\"", "client_secrets[0].note"), "{errors:#?}");
    assert_eq!(message(&errors, "", "colour"), "unknown key");
}

#[test]
fn a_wrong_type_names_the_key_path() {
    let errors = errors_of(&format!(
        "{BASE}{}",
        web_client("web", "redirect_uris = [\"https://a.example/cb\", 5]")
            .replace("redirect_uris = [\"https://app.example.com/cb\"]\n", "")
    ));
    let text = message(&errors, "[clients] client_id=\"web\"", "redirect_uris[1]");
    assert!(text.contains("integer"), "{text}");
}

#[test]
fn wrong_types_in_several_keys_of_one_table_are_all_reported() {
    let errors = errors_of(&format!(
        "{BASE}{}",
        client(
            "svc",
            "allowed_grant_types = \"client_credentials\"\nclient_secrets = [{ value = \"s\" }]\n\
             require_dpop = \"yes\"\nallowed_scopes = [1, \"api1.read\", 2]\nbogus = 1"
        )
    ));
    let table = "[clients] client_id=\"svc\"";
    assert!(has_error(&errors, table, "allowed_grant_types"), "{errors:#?}");
    assert!(has_error(&errors, table, "require_dpop"), "{errors:#?}");
    assert!(has_error(&errors, table, "allowed_scopes[0]"), "{errors:#?}");
    assert!(has_error(&errors, table, "allowed_scopes[2]"), "{errors:#?}");
    assert!(has_error(&errors, table, "bogus"), "{errors:#?}");
}

#[test]
fn several_errors_across_the_file_are_all_reported_at_once() {
    let errors = errors_of(&format!(
        "{BASE}\n[tokens]\naccess_token_lifetime = \"forever\"\n{}{}{}",
        web_client("one", "require_pkce = false"),
        web_client("two", "redirect_uris = [\"foo\"]")
            .replace("redirect_uris = [\"https://app.example.com/cb\"]\n", ""),
        client("three", "allowed_grant_types = [\"password\"]\nclient_secrets = [{ value = \"s\" }]"),
    ));
    assert!(has_error(&errors, "[tokens]", "access_token_lifetime"), "{errors:#?}");
    assert!(has_error(&errors, "[clients] client_id=\"one\"", "require_pkce"), "{errors:#?}");
    assert!(has_error(&errors, "[clients] client_id=\"two\"", "redirect_uris"), "{errors:#?}");
    assert!(has_error(&errors, "[clients] client_id=\"three\"", "allowed_grant_types"), "{errors:#?}");
    assert_eq!(errors.len(), 4, "{errors:#?}");
}

#[test]
fn errors_print_one_line_each_with_file_table_and_key() {
    let text = format!(
        "{BASE}{}",
        web_client("web-app", "redirect_uris = [\"foo\"]")
            .replace("redirect_uris = [\"https://app.example.com/cb\"]\n", "")
    );
    let errors = load_str(&text, "examples/quickstart.toml", Path::new("examples"), &[]).unwrap_err();
    assert_eq!(
        errors.to_string(),
        "examples/quickstart.toml: [clients] client_id=\"web-app\": key `redirect_uris`: \"foo\" is not an absolute URI"
    );
}

#[test]
fn a_syntax_error_gives_the_line() {
    let errors = errors_of("issuer = \"https://id.example.com\"\n[tokens\n");
    assert_eq!(errors.len(), 1);
    assert!(errors[0].message.starts_with("TOML syntax error at line 2"), "{}", errors[0].message);
    assert!(!errors[0].to_string().contains('\n'));
}

#[test]
fn a_missing_file_is_reported_with_its_path() {
    let errors = load(Path::new("/nonexistent/tessera.toml")).unwrap_err();
    assert_eq!(errors.0[0].file, "/nonexistent/tessera.toml");
}

#[test]
fn signing_retain_must_cover_the_longest_access_token() {
    let errors = errors_of(&format!("{BASE}\n[signing]\nretain = \"30m\"\n"));
    assert!(message(&errors, "[signing]", "retain").contains("[tokens] access_token_lifetime"));

    let errors = errors_of(&format!(
        "{BASE}\n[signing]\nretain = \"1h\"\n{}",
        web_client("web", "access_token_lifetime = \"2h\"")
    ));
    assert!(message(&errors, "[signing]", "retain").contains("client `web`"));
}

#[test]
fn signing_retain_must_cover_the_id_token_lifetime() {
    let errors =
        errors_of(&format!("{BASE}\n[tokens]\nid_token_lifetime = \"2h\"\n[signing]\nretain = \"1h\"\n"));
    assert!(message(&errors, "[signing]", "retain").contains("id_token_lifetime"));
}

#[test]
fn env_override_sets_the_access_token_lifetime() {
    let config = load_env(BASE, &[("TESSERA__TOKENS__ACCESS_TOKEN_LIFETIME", "5m")]).unwrap();
    assert_eq!(config.settings.tokens.access_token_lifetime, 300);
}

#[test]
fn env_override_replaces_the_storage_url() {
    let text = format!("{BASE}\n[storage]\nurl = \"sqlite://file.db\"");
    let config = load_env(&text, &[("TESSERA__STORAGE__URL", "postgres://db/tessera")]).unwrap();
    assert_eq!(config.storage.url, "postgres://db/tessera");
}

#[test]
fn env_override_sets_the_encryption_key_even_when_it_looks_like_a_number() {
    let config = load_env(BASE, &[("TESSERA__SIGNING__ENCRYPTION_KEY", "correct horse")]).unwrap();
    assert_eq!(
        config.settings.signing.encryption_key.as_ref().map(|key| key.expose()),
        Some("correct horse")
    );
    let config = load_env(BASE, &[("TESSERA__SIGNING__ENCRYPTION_KEY", "12345")]).unwrap();
    assert_eq!(config.settings.signing.encryption_key.as_ref().map(|key| key.expose()), Some("12345"));
}

#[test]
fn env_overrides_reach_the_issuer_listen_address_and_token_format() {
    let config = load_env(
        BASE,
        &[
            ("TESSERA__ISSUER", "https://login.example.org/"),
            ("TESSERA__SERVER__LISTEN", "0.0.0.0:80"),
            ("TESSERA__TOKENS__ACCESS_TOKEN_FORMAT", "reference"),
        ],
    )
    .unwrap();
    assert_eq!(config.settings.issuer, "https://login.example.org");
    assert_eq!(config.server.listen.to_string(), "0.0.0.0:80");
    assert_eq!(config.settings.tokens.access_token_format, AccessTokenFormat::Reference);
}

#[test]
fn an_env_override_with_a_bad_value_is_reported_like_the_file_key() {
    let errors = load_env(BASE, &[("TESSERA__TOKENS__ACCESS_TOKEN_LIFETIME", "3600")]).unwrap_err();
    let text = message(&errors, "[tokens]", "access_token_lifetime");
    assert!(text.contains("TESSERA__TOKENS__ACCESS_TOKEN_LIFETIME"), "{text}");
}

#[test]
fn an_env_override_adding_an_unknown_key_is_an_error() {
    let errors = load_env(BASE, &[("TESSERA__TOKENS__LIFETIME", "1h")]).unwrap_err();
    assert!(has_error(&errors, "[tokens]", "lifetime"), "{errors:#?}");
}

#[test]
fn short_value_secrets_are_accepted_without_a_warning_now_that_they_are_salted_and_slow() {
    let text = format!(
        "{BASE}{}",
        client(
            "short-svc",
            "allowed_grant_types = [\"client_credentials\"]\nclient_secrets = [{ value = \"svc-secret\" }]"
        ),
    );
    let config = load_ok(&text);
    let warnings: Vec<String> = config.warnings.iter().map(ToString::to_string).collect();
    assert!(!warnings.iter().any(|w| w.contains("short-svc")), "{warnings:#?}");
}

#[test]
fn registration_is_off_by_default_and_its_section_is_checked() {
    let config = load_ok(BASE);
    assert!(!config.settings.registration.enabled);
    assert_eq!(config.settings.registration.unused_client_lifetime, 30 * 86_400);
    let config = load_ok(&format!(
        "{BASE}\n[registration]\nenabled = true\ninitial_access_token = \"0123456789abcdef0123\"\n\
         allowed_scopes = [\"openid\"]\nunused_client_lifetime = \"7d\""
    ));
    let registration = &config.settings.registration;
    assert!(registration.enabled);
    assert_eq!(registration.initial_access_token.as_ref().unwrap().expose(), "0123456789abcdef0123");
    assert_eq!(registration.allowed_scopes, ["openid"]);
    assert_eq!(registration.unused_client_lifetime, 7 * 86_400);

    let errors = errors_of(&format!(
        "{BASE}\n[registration]\nenabled = true\ninitial_access_token = \"short\"\n\
         allowed_scopes = [\"no.such.scope\"]\nunused_client_lifetime = \"0s\"\nopen = true"
    ));
    for key in ["initial_access_token", "allowed_scopes", "unused_client_lifetime", "open"] {
        assert!(has_error(&errors, "[registration]", key), "{key}: {errors:#?}");
    }
    let errors = errors_of(&format!(
        "{BASE}\n[registration]\nenabled = true\nallowed_scopes = [\"openid\", \"tessera:admin\"]\n\
         [client_id_metadata_documents]\nenabled = true\nallowed_scopes = [\"tessera:admin\"]"
    ));
    assert!(has_error(&errors, "[registration]", "allowed_scopes"), "{errors:#?}");
    assert!(has_error(&errors, "[client_id_metadata_documents]", "allowed_scopes"), "{errors:#?}");
    let errors = errors_of(&format!("{BASE}\n[registration]\nenabled = true"));
    assert!(has_error(&errors, "[registration]", "allowed_scopes"), "{errors:#?}");
}

#[test]
fn second_factor_keys_are_read_and_checked() {
    let config = load_ok(BASE);
    assert!(!config.settings.require_mfa);
    assert!(config.clients.iter().all(|client| !client.require_mfa));
    let config = load_ok(&format!(
        "{BASE}\n[sign_in]\nrequire_mfa = true\n[[clients]]\nclient_id = \"bank\"\n\
         allowed_grant_types = [\"authorization_code\"]\nclient_secrets = [{{ value = \"bank-secret\" }}]\n\
         redirect_uris = [\"https://bank.example/cb\"]\nallowed_scopes = [\"openid\"]\nrequire_mfa = true"
    ));
    assert!(config.settings.require_mfa);
    assert!(config.clients.iter().find(|c| c.client_id.as_str() == "bank").unwrap().require_mfa);
    let errors = errors_of(&format!("{BASE}\n[sign_in]\nrequire_mfa = \"yes\"\nremember = true"));
    assert!(has_error(&errors, "[sign_in]", "require_mfa"), "{errors:#?}");
    assert!(has_error(&errors, "[sign_in]", "remember"), "{errors:#?}");
}

#[test]
fn passkeys_take_the_issuers_host_or_a_parent_domain_and_are_off_on_an_ip_address() {
    let on_host = |issuer: &str, extra: &str| {
        let text = BASE.replacen("issuer = \"https://id.example.com\"", &format!("issuer = \"{issuer}\""), 1);
        format!("{text}\n{extra}")
    };
    let config = load_ok(&on_host("https://login.example.com", ""));
    assert_eq!(config.settings.passkey_rp_id.as_deref(), Some("login.example.com"));
    let config = load_ok(&on_host("https://login.example.com", "[passkeys]\nrp_id = \"example.com\""));
    assert_eq!(config.settings.passkey_rp_id.as_deref(), Some("example.com"));
    let errors = errors_of(&on_host("https://login.example.com", "[passkeys]\nrp_id = \"other.example\""));
    assert!(has_error(&errors, "[passkeys]", "rp_id"), "{errors:#?}");
    let errors = errors_of(&on_host("https://login.example.com", "[passkeys]\nrp = \"x\""));
    assert!(has_error(&errors, "[passkeys]", "rp"), "{errors:#?}");
    let config = load_ok(&on_host("http://127.0.0.1:8080", ""));
    assert_eq!(config.settings.passkey_rp_id, None, "browsers refuse WebAuthn on IP addresses");
    assert!(
        config.warnings.iter().any(|warning| warning.to_string().contains("passkeys are off")),
        "{:#?}",
        config.warnings
    );
}
