//! `[[clients]]`: the registered clients, checked against OAuth 2.1 and the resources.

use std::collections::BTreeSet;

use serde::Deserialize;
use tessera_core::catalog::Resources;
use tessera_core::model::{
    AccessTokenFormat, AuthMethod, CibaDeliveryMode, Client, ClientCredential, ClientId, ClientRegistration,
    FieldError, GrantType, REMOVED_GRANT_TYPES, TokenExchangePolicy,
};
use tessera_core::secret::SecretHash;
use tessera_core::settings::RefreshExpiration;
use tessera_core::tokens::SigningAlgorithm;

use crate::decode::{Cx, Place, Seconds, Unknown, http_url, to_json_map, unix_time};
use crate::sections::positive;

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawClient {
    client_id: Option<String>,
    client_name: Option<String>,
    allowed_grant_types: Option<Vec<String>>,
    require_client_secret: Option<bool>,
    client_secrets: Vec<toml::Table>,
    token_endpoint_auth_methods: Option<Vec<String>>,
    require_pkce: Option<bool>,
    redirect_uris: Vec<String>,
    post_logout_redirect_uris: Vec<String>,
    allowed_scopes: Vec<String>,
    allow_offline_access: bool,
    refresh_token_expiration: Option<String>,
    sliding_refresh_token_lifetime: Option<Seconds>,
    require_consent: Option<bool>,
    require_dpop: bool,
    require_pushed_authorization: bool,
    access_token_lifetime: Option<Seconds>,
    access_token_format: Option<AccessTokenFormat>,
    ciba_delivery_mode: Option<String>,
    backchannel_client_notification_endpoint: Option<String>,
    token_exchange: Option<toml::Table>,
    allowed_cors_origins: Vec<String>,
    refresh_token_rotation: Option<bool>,
    id_token_signed_response_alg: Option<String>,
    access_token_signing_alg: Option<String>,
    require_mfa: bool,
    #[serde(flatten)]
    unknown: Unknown,
}

/// One `client_secrets` entry. Holds a plain secret only until it is hashed.
#[derive(Default, Deserialize)]
#[serde(default)]
struct RawCredential {
    value: Option<String>,
    sha256: Option<String>,
    jwk: Option<toml::Table>,
    jwks_uri: Option<String>,
    x509_subject: Option<String>,
    x509_thumbprint: Option<String>,
    expires: Option<toml::Value>,
    #[serde(flatten)]
    unknown: Unknown,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawTokenExchange {
    audiences: Vec<String>,
    delegation: bool,
    impersonation: bool,
    #[serde(flatten)]
    unknown: Unknown,
}

/// JWK members that only a private or symmetric key has (RFC 7518 §6.2.2, §6.3.2, §6.4.1).
const PRIVATE_JWK_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

/// Checks every client; returns the valid ones.
pub(crate) fn clients(
    cx: &mut Cx,
    tables: Vec<toml::Table>,
    resources: &Resources,
    algorithms: &[SigningAlgorithm],
) -> Vec<Client> {
    let mut seen = BTreeSet::new();
    let mut clients = Vec::new();
    for (index, table) in tables.into_iter().enumerate() {
        let place = Place::entry("clients", index, "client_id", &table);
        let raw: RawClient = cx.decode(&place, table).unwrap_or_default();
        cx.unknown(&place, &raw.unknown);
        let client = client(cx, &place, raw, resources, algorithms);
        if let Some(client) = client {
            if !seen.insert(client.client_id.clone()) {
                cx.error(&place, "client_id", format!("duplicate client_id `{}`", client.client_id));
                continue;
            }
            clients.push(client);
        }
    }
    clients
}

fn client(
    cx: &mut Cx,
    place: &Place,
    raw: RawClient,
    resources: &Resources,
    algorithms: &[SigningAlgorithm],
) -> Option<Client> {
    let missing_id = raw.client_id.is_none();
    if missing_id {
        cx.error(place, "client_id", "missing required key");
    }
    let public = raw.require_client_secret == Some(false);
    let grants = grant_types(cx, place, raw.allowed_grant_types);

    let secret_count = raw.client_secrets.len();
    let mut credentials = Vec::new();
    for (index, table) in raw.client_secrets.into_iter().enumerate() {
        let inner = place.inner("client_secrets", Some(index));
        let entry: RawCredential = cx.decode(&inner, table).unwrap_or_default();
        cx.unknown(&inner, &entry.unknown);
        if let Some(credential) = credential(cx, &inner, entry) {
            credentials.push(credential);
        }
    }
    let auth_methods = auth_methods(cx, place, public, &credentials, raw.token_endpoint_auth_methods);

    let user_flow = grants
        .iter()
        .any(|grant| matches!(grant, GrantType::AuthorizationCode | GrantType::DeviceCode | GrantType::Ciba));
    later_flows(cx, place, raw.refresh_token_expiration.as_deref());
    ciba(
        cx,
        place,
        raw.ciba_delivery_mode.as_deref(),
        raw.backchannel_client_notification_endpoint.as_deref(),
    );
    let token_exchange =
        raw.token_exchange.map(|table| token_exchange(cx, &place.inner("token_exchange", None), table));
    let allowed_cors_origins: Vec<String> =
        raw.allowed_cors_origins.iter().filter_map(|text| cors_origin(cx, place, text)).collect();
    let id_token_signed_response_alg =
        signing_alg(cx, place, "id_token_signed_response_alg", raw.id_token_signed_response_alg, algorithms);
    let access_token_signing_alg =
        signing_alg(cx, place, "access_token_signing_alg", raw.access_token_signing_alg, algorithms);
    let access_token_lifetime = raw
        .access_token_lifetime
        .map(|lifetime| positive(cx, place, "access_token_lifetime", Some(lifetime), 1));

    let client_id = raw.client_id.unwrap_or_default();
    let client = Client {
        client_name: raw.client_name.unwrap_or_else(|| client_id.clone()),
        client_id: ClientId(client_id),
        allowed_grant_types: grants,
        credentials,
        auth_methods,
        redirect_uris: raw.redirect_uris,
        post_logout_redirect_uris: raw.post_logout_redirect_uris,
        allowed_scopes: raw.allowed_scopes,
        allow_offline_access: raw.allow_offline_access,
        require_consent: raw.require_consent.unwrap_or(user_flow),
        require_dpop: raw.require_dpop,
        require_pushed_authorization: raw.require_pushed_authorization,
        access_token_lifetime,
        access_token_format: raw.access_token_format,
        refresh_token_expiration: match raw.refresh_token_expiration.as_deref() {
            Some("sliding") => RefreshExpiration::Sliding,
            _ => RefreshExpiration::Absolute,
        },
        // Default sliding window: 15 days, as IdentityServer does.
        sliding_refresh_token_lifetime: raw.sliding_refresh_token_lifetime.map_or(15 * 86_400, |s| s.0),
        token_exchange,
        ciba_delivery_mode: if raw.ciba_delivery_mode.as_deref() == Some("ping") {
            CibaDeliveryMode::Ping
        } else {
            CibaDeliveryMode::Poll
        },
        backchannel_client_notification_endpoint: raw.backchannel_client_notification_endpoint.clone(),
        allowed_cors_origins,
        refresh_token_rotation: raw.refresh_token_rotation.unwrap_or(true),
        id_token_signed_response_alg,
        access_token_signing_alg,
        registration: None,
        from_metadata_document: false,
        require_mfa: raw.require_mfa,
    };
    // The rules every registered client keeps are core's; this crate only places them.
    let registration = ClientRegistration {
        client: &client,
        public,
        require_pkce: raw.require_pkce,
        credentials_listed: secret_count,
        resources,
    };
    for FieldError { field, message } in registration.validate() {
        if !(missing_id && field == "client_id") {
            cx.error(place, field, message);
        }
    }
    (!missing_id).then_some(client)
}

/// An `Origin` as browsers send it (RFC 6454 §6.2): scheme, host and non-default port.
fn cors_origin(cx: &mut Cx, place: &Place, text: &str) -> Option<String> {
    let origin = url::Url::parse(text).ok().filter(|url| {
        matches!(url.scheme(), "http" | "https")
            && url.host().is_some()
            && url.path() == "/"
            && url.query().is_none()
            && url.fragment().is_none()
            && url.username().is_empty()
    });
    match origin {
        Some(url) => Some(url.origin().ascii_serialization()),
        None => {
            cx.error(
                place,
                "allowed_cors_origins",
                format!("{text:?} is not an origin such as \"https://app.example.com\" (no path)"),
            );
            None
        }
    }
}

/// A per-client signing algorithm: one of `[signing] algorithms`, which have keys.
fn signing_alg(
    cx: &mut Cx,
    place: &Place,
    key: &str,
    raw: Option<String>,
    algorithms: &[SigningAlgorithm],
) -> Option<SigningAlgorithm> {
    let name = raw?;
    match name.parse::<SigningAlgorithm>() {
        Ok(algorithm) if algorithms.contains(&algorithm) => Some(algorithm),
        Ok(_) => {
            let listed: Vec<&str> = algorithms.iter().map(|alg| alg.as_str()).collect();
            cx.error(
                place,
                key,
                format!("`{name}` has no key: add it to [signing] algorithms ({})", listed.join(", ")),
            );
            None
        }
        Err(message) => {
            cx.error(place, key, message);
            None
        }
    }
}

/// The origins browsers may call the token endpoint and its siblings from: each
/// client's `allowed_cors_origins`, and for public clients (SPAs) the origins of their
/// `http`/`https` redirect URIs, as a sorted list without duplicates.
pub(crate) fn cors_origins(clients: &[Client]) -> Vec<String> {
    let mut origins = BTreeSet::new();
    for client in clients {
        origins.extend(client.allowed_cors_origins.iter().cloned());
        if client.is_public() {
            let web = client.redirect_uris.iter().filter_map(|uri| url::Url::parse(uri).ok());
            origins.extend(
                web.filter(|url| matches!(url.scheme(), "http" | "https"))
                    .map(|url| url.origin().ascii_serialization()),
            );
        }
    }
    origins.into_iter().collect()
}

fn grant_types(cx: &mut Cx, place: &Place, raw: Option<Vec<String>>) -> Vec<GrantType> {
    const KEY: &str = "allowed_grant_types";
    let Some(raw) = raw else {
        cx.error(place, KEY, "missing required key");
        return Vec::new();
    };
    if raw.is_empty() {
        cx.error(place, KEY, "a client needs at least one grant type");
    }
    let mut grants = Vec::new();
    for name in &raw {
        match name.as_str() {
            removed if REMOVED_GRANT_TYPES.contains(&removed) => {
                cx.error(place, KEY, format!("`{name}` was removed in OAuth 2.1"));
            }
            "refresh_token" => cx.error(
                place,
                KEY,
                "`refresh_token` is not listed: it follows from allow_offline_access = true",
            ),
            _ => match GrantType::parse(name) {
                Some(grant) if !grants.contains(&grant) => grants.push(grant),
                Some(_) => {}
                None => {
                    let known: Vec<&str> = GrantType::ALL
                        .into_iter()
                        .filter(|grant| *grant != GrantType::RefreshToken)
                        .map(GrantType::as_str)
                        .collect();
                    cx.error(
                        place,
                        KEY,
                        format!("unknown grant type `{name}` (known: {})", known.join(", ")),
                    );
                }
            },
        }
    }
    grants
}

fn credential(cx: &mut Cx, place: &Place, raw: RawCredential) -> Option<ClientCredential> {
    let expires = match &raw.expires {
        None => None,
        Some(value) => match unix_time(value) {
            Ok(at) => Some(at),
            Err(message) => {
                cx.error(place, "expires", message);
                None
            }
        },
    };
    let kinds: Vec<&str> = [
        ("value", raw.value.is_some()),
        ("sha256", raw.sha256.is_some()),
        ("jwk", raw.jwk.is_some()),
        ("jwks_uri", raw.jwks_uri.is_some()),
        ("x509_subject", raw.x509_subject.is_some()),
        ("x509_thumbprint", raw.x509_thumbprint.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, present)| present.then_some(name))
    .collect();
    if kinds.len() != 1 {
        let found = if kinds.is_empty() { "none".to_owned() } else { kinds.join(", ") };
        cx.error(
            place,
            "",
            format!(
                "needs exactly one of value, sha256, jwk, jwks_uri, x509_subject, x509_thumbprint (found: {found})"
            ),
        );
        return None;
    }
    if let Some(value) = raw.value {
        if value.is_empty() {
            cx.error(place, "value", "must not be empty");
            return None;
        }
        // Only a salted argon2id hash is kept: the plain secret never reaches the store
        // or a log, and a copy of the store does not let a short one be guessed fast.
        return match tessera_core::password::hash_password(&value, &tessera_core::random::Rng::default()) {
            Ok(argon2id) => Some(ClientCredential::SaltedSecret { argon2id, expires }),
            Err(message) => {
                cx.error(place, "value", message);
                None
            }
        };
    }
    if let Some(sha256) = raw.sha256 {
        return match SecretHash::from_base64(&sha256) {
            Ok(sha256) => Some(ClientCredential::SharedSecret { sha256, expires }),
            Err(message) => {
                cx.error(place, "sha256", format!("{message}: expected base64 of a SHA-256 digest"));
                None
            }
        };
    }
    if let Some(jwk) = raw.jwk {
        return public_jwk(cx, place, jwk).map(|jwk| ClientCredential::Jwk { jwk, expires });
    }
    if let Some(jwks_uri) = raw.jwks_uri {
        return match http_url(&jwks_uri) {
            Ok(_) => Some(ClientCredential::JwksUri { jwks_uri, expires }),
            Err(message) => {
                cx.error(place, "jwks_uri", message);
                None
            }
        };
    }
    if let Some(subject) = raw.x509_subject {
        // RFC 8705 §2.1.2: an RFC 4514 string, such as "CN=payments,O=Example,C=DE".
        if let Err(reason) = tessera_core::model::DistinguishedName::parse(&subject) {
            cx.error(place, "x509_subject", format!("not an RFC 4514 distinguished name: {reason}"));
            return None;
        }
        return Some(ClientCredential::X509Subject { subject, expires });
    }
    let thumbprint = raw.x509_thumbprint?;
    // RFC 8705 §3.1: `x5t#S256` is the base64url SHA-256 of the DER certificate.
    let base64url = thumbprint.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !base64url || SecretHash::from_base64(&thumbprint).is_err() {
        cx.error(place, "x509_thumbprint", "expected the base64url (no padding) SHA-256 of the certificate");
        return None;
    }
    Some(ClientCredential::X509Thumbprint { thumbprint, expires })
}

fn public_jwk(cx: &mut Cx, place: &Place, jwk: toml::Table) -> Option<serde_json::Value> {
    let jwk = match to_json_map(jwk) {
        Ok(jwk) => jwk,
        Err(message) => {
            cx.error(place, "jwk", message);
            return None;
        }
    };
    if !jwk.get("kty").is_some_and(serde_json::Value::is_string) {
        cx.error(place, "jwk", "a JWK needs `kty` (RFC 7517 §4.1)");
        return None;
    }
    let private: Vec<&str> =
        PRIVATE_JWK_MEMBERS.into_iter().filter(|member| jwk.contains_key(*member)).collect();
    if !private.is_empty() {
        cx.error(
            place,
            "jwk",
            format!("contains private key material ({}): register only the public key", private.join(", ")),
        );
        return None;
    }
    Some(serde_json::Value::Object(jwk))
}

/// The methods the credentials can serve, in [`AuthMethod::ALL`] order, narrowed to
/// `token_endpoint_auth_methods` when it is given.
fn auth_methods(
    cx: &mut Cx,
    place: &Place,
    public: bool,
    credentials: &[ClientCredential],
    restrict: Option<Vec<String>>,
) -> Vec<AuthMethod> {
    const KEY: &str = "token_endpoint_auth_methods";
    let served: Vec<AuthMethod> = if public {
        vec![AuthMethod::None]
    } else {
        AuthMethod::ALL
            .into_iter()
            .filter(|method| credentials.iter().any(|credential| credential.methods().contains(method)))
            .collect()
    };
    let Some(restrict) = restrict else { return served };
    if restrict.is_empty() {
        cx.error(
            place,
            KEY,
            "must name at least one method; leave it out to accept every method the credentials serve",
        );
        return served;
    }
    let mut wanted = Vec::new();
    for name in &restrict {
        match AuthMethod::parse(name) {
            None => {
                let known: Vec<&str> = AuthMethod::ALL.into_iter().map(AuthMethod::as_str).collect();
                cx.error(place, KEY, format!("unknown method `{name}` (known: {})", known.join(", ")));
            }
            Some(method) if !served.contains(&method) => {
                let reason = if public {
                    "a public client authenticates only with `none`"
                } else if method == AuthMethod::None {
                    "a confidential client must authenticate"
                } else {
                    "no entry in client_secrets serves it"
                };
                cx.error(place, KEY, format!("`{name}`: {reason}"));
            }
            Some(method) => wanted.push(method),
        }
    }
    served.into_iter().filter(|method| wanted.contains(method)).collect()
}

/// Keys for flows still to come: accepted now, checked for obvious mistakes.
fn later_flows(cx: &mut Cx, place: &Place, expiration: Option<&str>) {
    if let Some(expiration) = expiration.filter(|mode| !matches!(*mode, "absolute" | "sliding")) {
        cx.error(
            place,
            "refresh_token_expiration",
            format!("`{expiration}`: expected `absolute` or `sliding`"),
        );
    }
}

fn ciba(cx: &mut Cx, place: &Place, mode: Option<&str>, endpoint: Option<&str>) {
    match mode {
        None | Some("poll" | "ping") => {}
        Some(other) => cx.error(place, "ciba_delivery_mode", format!("`{other}`: expected `poll` or `ping`")),
    }
    if let Some(Err(message)) = endpoint.map(http_url) {
        cx.error(place, "backchannel_client_notification_endpoint", message);
    }
}

fn token_exchange(cx: &mut Cx, place: &Place, table: toml::Table) -> TokenExchangePolicy {
    let raw: RawTokenExchange = cx.decode(place, table).unwrap_or_default();
    cx.unknown(place, &raw.unknown);
    TokenExchangePolicy {
        audiences: raw.audiences,
        delegation: raw.delegation,
        impersonation: raw.impersonation,
    }
}

#[cfg(test)]
mod tests {
    use tessera_core::model::{AccessTokenFormat, AuthMethod, ClientCredential, GrantType};
    use tessera_core::secret::SecretHash;

    use crate::test_support::{BASE, client, errors_of, has_error, load_ok, message, web_client};

    const WEB: &str = "[clients] client_id=\"web\"";
    const SVC: &str = "[clients] client_id=\"svc\"";

    /// A `client_credentials` client with `extra` lines.
    fn service(extra: &str) -> String {
        format!(
            "{BASE}{}",
            client(
                "svc",
                &format!(
                    "allowed_grant_types = [\"client_credentials\"]\nallowed_scopes = [\"api1.read\"]\n{extra}"
                )
            )
        )
    }

    fn web(extra: &str) -> String {
        format!("{BASE}{}", web_client("web", extra))
    }

    #[test]
    fn script_schemes_and_spaces_are_no_redirect_uris() {
        for uri in ["javascript:alert(1)//", "data:text/html,x", "https://app.example.com/c b"] {
            let text = web("").replace("https://app.example.com/cb", uri);
            let errors = errors_of(&text);
            assert!(has_error(&errors, WEB, "redirect_uris"), "{uri}: {errors:#?}");
        }
    }

    fn without_redirects(text: &str) -> String {
        text.replace("redirect_uris = [\"https://app.example.com/cb\"]\n", "")
    }

    #[test]
    fn an_undefined_allowed_scope_is_an_error() {
        let errors =
            errors_of(&web("").replace("[\"openid\", \"api1.read\"]", "[\"openid\", \"api9.read\"]"));
        assert!(message(&errors, WEB, "allowed_scopes").contains("api9.read"), "{errors:#?}");
    }

    #[test]
    fn offline_access_is_always_an_allowed_scope() {
        load_ok(&web("").replace("[\"openid\", \"api1.read\"]", "[\"openid\", \"offline_access\"]"));
    }

    #[test]
    fn a_redirect_uri_that_is_not_absolute_is_an_error() {
        let errors = errors_of(&without_redirects(&web("redirect_uris = [\"/callback\"]")));
        assert_eq!(message(&errors, WEB, "redirect_uris"), "\"/callback\" is not an absolute URI");
    }

    #[test]
    fn a_redirect_uri_with_a_fragment_is_an_error() {
        let errors =
            errors_of(&without_redirects(&web("redirect_uris = [\"https://app.example.com/cb#x\"]")));
        assert!(message(&errors, WEB, "redirect_uris").contains("fragment"), "{errors:#?}");
    }

    #[test]
    fn a_post_logout_redirect_uri_must_be_absolute_without_fragment() {
        let errors =
            errors_of(&web("post_logout_redirect_uris = [\"signed-out\", \"https://a.example/#top\"]"));
        let count = errors.iter().filter(|e| e.table == WEB && e.key == "post_logout_redirect_uris").count();
        assert_eq!(count, 2, "{errors:#?}");
    }

    #[test]
    fn native_app_redirect_uris_with_private_schemes_are_accepted() {
        let config = load_ok(&without_redirects(&web(
            "redirect_uris = [\"com.example.app:/cb\", \"http://127.0.0.1/cb\"]",
        )));
        assert_eq!(config.clients[0].redirect_uris, ["com.example.app:/cb", "http://127.0.0.1/cb"]);
    }

    #[test]
    fn authorization_code_needs_a_redirect_uri() {
        let errors = errors_of(&without_redirects(&web("")));
        assert!(has_error(&errors, WEB, "redirect_uris"), "{errors:#?}");
    }

    #[test]
    fn implicit_and_password_grants_were_removed_in_oauth_2_1() {
        for grant in ["implicit", "password"] {
            let errors = errors_of(
                &web("")
                    .replace("[\"authorization_code\"]", &format!("[\"authorization_code\", \"{grant}\"]")),
            );
            assert!(
                message(&errors, WEB, "allowed_grant_types").contains("removed in OAuth 2.1"),
                "{errors:#?}"
            );
        }
    }

    #[test]
    fn refresh_token_is_not_a_grant_to_list() {
        let errors = errors_of(
            &web("").replace("[\"authorization_code\"]", "[\"authorization_code\", \"refresh_token\"]"),
        );
        assert!(message(&errors, WEB, "allowed_grant_types").contains("allow_offline_access"), "{errors:#?}");
    }

    #[test]
    fn an_unknown_grant_type_is_an_error() {
        let errors = errors_of(&web("").replace("[\"authorization_code\"]", "[\"authorisation_code\"]"));
        assert!(message(&errors, WEB, "allowed_grant_types").contains("unknown grant type"), "{errors:#?}");
    }

    #[test]
    fn allowed_grant_types_is_required() {
        let errors = errors_of(&format!("{BASE}{}", client("svc", "client_secrets = [{ value = \"s\" }]")));
        assert!(has_error(&errors, SVC, "allowed_grant_types"), "{errors:#?}");
    }

    #[test]
    fn require_pkce_false_is_refused() {
        let errors = errors_of(&web("require_pkce = false"));
        assert!(message(&errors, WEB, "require_pkce").contains("PKCE is mandatory in OAuth 2.1"));
        load_ok(&web("require_pkce = true"));
    }

    #[test]
    fn a_duplicate_client_id_is_an_error() {
        let errors = errors_of(&format!("{}{}", web(""), web_client("web", "")));
        assert!(message(&errors, WEB, "client_id").contains("duplicate"), "{errors:#?}");
    }

    #[test]
    fn a_client_id_equal_to_an_api_resource_name_is_an_error() {
        let errors = errors_of(&format!("{BASE}{}", web_client("api1", "")));
        assert!(has_error(&errors, "[clients] client_id=\"api1\"", "client_id"), "{errors:#?}");
    }

    #[test]
    fn a_client_without_client_id_is_named_by_its_position() {
        let errors =
            errors_of(&format!("{BASE}\n[[clients]]\nallowed_grant_types = [\"client_credentials\"]"));
        assert!(has_error(&errors, "[clients] #1", "client_id"), "{errors:#?}");
    }

    #[test]
    fn a_confidential_client_needs_a_secret() {
        let errors = errors_of(&service(""));
        assert!(has_error(&errors, SVC, "client_secrets"), "{errors:#?}");
    }

    #[test]
    fn a_public_client_must_not_have_secrets() {
        let errors = errors_of(&web("require_client_secret = false"));
        assert!(has_error(&errors, WEB, "client_secrets"), "{errors:#?}");
    }

    #[test]
    fn a_public_client_cannot_use_client_credentials() {
        let errors = errors_of(&service("require_client_secret = false"));
        assert!(has_error(&errors, SVC, "allowed_grant_types"), "{errors:#?}");
    }

    #[test]
    fn a_public_client_authenticates_with_none() {
        let config = load_ok(
            &web("require_client_secret = false")
                .replace("client_secrets = [{ value = \"web-secret\" }]\n", ""),
        );
        assert_eq!(config.clients[0].auth_methods, [AuthMethod::None]);
        assert!(config.clients[0].is_public());
    }

    #[test]
    fn a_value_secret_is_stored_only_as_a_salted_argon2id_hash() {
        let config = load_ok(&service("client_secrets = [{ value = \"svc-secret\" }]"));
        let ClientCredential::SaltedSecret { argon2id, .. } = &config.clients[0].credentials[0] else {
            panic!("{:?}", config.clients[0].credentials)
        };
        assert!(tessera_core::password::is_argon2id_hash(argon2id), "{argon2id}");
        assert!(tessera_core::password::verify_password("svc-secret", argon2id));
        assert!(!argon2id.contains(&SecretHash::of("svc-secret").to_base64url()));
        assert!(!format!("{config:?}").contains("svc-secret"));
        let again = load_ok(&service("client_secrets = [{ value = \"svc-secret\" }]"));
        assert_ne!(
            again.clients[0].credentials, config.clients[0].credentials,
            "salted: a fresh salt each load"
        );
        let warnings: Vec<String> = config.warnings.iter().map(ToString::to_string).collect();
        assert!(
            !warnings.iter().any(|w| w.contains("client_secrets")),
            "no short-secret warning: {warnings:?}"
        );
    }

    #[test]
    fn a_sha256_secret_must_be_base64_of_32_bytes() {
        let hash = SecretHash::of("x").to_base64url();
        let config = load_ok(&service(&format!("client_secrets = [{{ sha256 = \"{hash}\" }}]")));
        assert!(
            matches!(&config.clients[0].credentials[0], ClientCredential::SharedSecret { sha256, .. } if sha256.matches("x"))
        );
        let errors = errors_of(&service("client_secrets = [{ value = \"ok\" }, { sha256 = \"c2hvcnQ=\" }]"));
        assert!(has_error(&errors, SVC, "client_secrets[1].sha256"), "{errors:#?}");
    }

    #[test]
    fn a_secret_entry_needs_exactly_one_kind() {
        let errors = errors_of(&service(
            "client_secrets = [{ value = \"a\", x509_subject = \"CN=svc\" }, { expires = \"2030-01-01T00:00:00Z\" }]",
        ));
        assert!(
            message(&errors, SVC, "client_secrets[0]").contains("found: value, x509_subject"),
            "{errors:#?}"
        );
        assert!(message(&errors, SVC, "client_secrets[1]").contains("found: none"), "{errors:#?}");
    }

    #[test]
    fn a_secret_may_expire_at_an_rfc3339_time() {
        let config = load_ok(&service(
            "client_secrets = [{ value = \"a\", expires = \"2030-01-01T00:00:00Z\" }, { value = \"b\", expires = 2030-01-01T01:00:00+01:00 }]",
        ));
        let expiries: Vec<_> = config.clients[0].credentials.iter().map(ClientCredential::expires).collect();
        assert_eq!(expiries, [Some(1_893_456_000), Some(1_893_456_000)]);
        let errors = errors_of(&service("client_secrets = [{ value = \"a\", expires = \"next year\" }]"));
        assert!(has_error(&errors, SVC, "client_secrets[0].expires"), "{errors:#?}");
    }

    #[test]
    fn a_jwk_must_be_public() {
        let public = "jwk = { kty = \"EC\", crv = \"P-256\", x = \"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\", y = \"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\" }";
        let config = load_ok(&service(&format!("client_secrets = [{{ {public} }}]")));
        assert_eq!(config.clients[0].auth_methods, [AuthMethod::PrivateKeyJwt]);
        let ClientCredential::Jwk { jwk, .. } = &config.clients[0].credentials[0] else { panic!() };
        assert_eq!(jwk["crv"], "P-256");

        for private in ["d = \"abc\"", "k = \"abc\"", "p = \"x\", q = \"y\""] {
            let errors =
                errors_of(&service(&format!("client_secrets = [{{ jwk = {{ kty = \"EC\", {private} }} }}]")));
            assert!(message(&errors, SVC, "client_secrets[0].jwk").contains("private key"), "{errors:#?}");
        }
        let errors = errors_of(&service("client_secrets = [{ jwk = { crv = \"P-256\" } }]"));
        assert!(message(&errors, SVC, "client_secrets[0].jwk").contains("kty"), "{errors:#?}");
    }

    #[test]
    fn a_jwks_uri_must_be_an_absolute_http_url() {
        load_ok(&service("client_secrets = [{ jwks_uri = \"https://svc.example.com/jwks.json\" }]"));
        for uri in ["/jwks.json", "file:///etc/jwks.json"] {
            let errors = errors_of(&service(&format!("client_secrets = [{{ jwks_uri = \"{uri}\" }}]")));
            assert!(has_error(&errors, SVC, "client_secrets[0].jwks_uri"), "{uri}: {errors:#?}");
        }
    }

    #[test]
    fn an_x509_subject_must_be_a_distinguished_name() {
        load_ok(&service("client_secrets = [{ x509_subject = \"CN=svc,O=Example\\\\, Inc.\" }]"));
        for bad in ["", "svc", "CN="] {
            let errors = errors_of(&service(&format!("client_secrets = [{{ x509_subject = \"{bad}\" }}]")));
            assert!(has_error(&errors, SVC, "client_secrets[0].x509_subject"), "{bad}: {errors:#?}");
        }
    }

    #[test]
    fn an_x509_thumbprint_must_be_base64url_sha256() {
        let thumbprint = SecretHash::of("cert").to_base64url();
        load_ok(&service(&format!("client_secrets = [{{ x509_thumbprint = \"{thumbprint}\" }}]")));
        let errors = errors_of(&service("client_secrets = [{ x509_thumbprint = \"AB:CD\" }]"));
        assert!(has_error(&errors, SVC, "client_secrets[0].x509_thumbprint"), "{errors:#?}");
    }

    #[test]
    fn auth_methods_are_the_union_of_what_the_credentials_serve() {
        let thumbprint = SecretHash::of("cert").to_base64url();
        let config = load_ok(&service(&format!(
            "client_secrets = [{{ x509_thumbprint = \"{thumbprint}\" }}, {{ x509_subject = \"CN=svc\" }}, {{ value = \"s\" }}, {{ jwks_uri = \"https://svc.example/jwks\" }}]"
        )));
        assert_eq!(
            config.clients[0].auth_methods,
            [
                AuthMethod::ClientSecretBasic,
                AuthMethod::ClientSecretPost,
                AuthMethod::PrivateKeyJwt,
                AuthMethod::TlsClientAuth,
                AuthMethod::SelfSignedTlsClientAuth,
            ]
        );
    }

    #[test]
    fn token_endpoint_auth_methods_narrows_the_methods() {
        let config = load_ok(&service(
            "client_secrets = [{ value = \"s\" }]\ntoken_endpoint_auth_methods = [\"client_secret_post\"]",
        ));
        assert_eq!(config.clients[0].auth_methods, [AuthMethod::ClientSecretPost]);
    }

    #[test]
    fn token_endpoint_auth_methods_must_be_known_and_served() {
        let errors = errors_of(&service(
            "client_secrets = [{ value = \"s\" }]\ntoken_endpoint_auth_methods = [\"client_secret_jwt\", \"private_key_jwt\", \"none\"]",
        ));
        let methods: Vec<&str> = errors
            .iter()
            .filter(|e| e.table == SVC && e.key == "token_endpoint_auth_methods")
            .map(|e| e.message.as_str())
            .collect();
        assert_eq!(methods.len(), 3, "{errors:#?}");
        assert!(methods[0].contains("unknown method"));
        assert!(methods[1].contains("no entry in client_secrets serves it"));
    }

    #[test]
    fn require_consent_defaults_to_true_only_for_user_flows() {
        let config = load_ok(&format!(
            "{}{}",
            web(""),
            client(
                "svc",
                "allowed_grant_types = [\"client_credentials\"]\nclient_secrets = [{ value = \"s\" }]"
            )
        ));
        assert!(config.clients[0].require_consent);
        assert!(!config.clients[1].require_consent);
        let config = load_ok(&web("require_consent = false"));
        assert!(!config.clients[0].require_consent);
    }

    #[test]
    fn per_client_overrides_and_flags_are_kept() {
        let config = load_ok(&web(
            "client_name = \"Web\"\naccess_token_lifetime = \"10m\"\naccess_token_format = \"reference\"\n\
             require_pushed_authorization = true\nallow_offline_access = true",
        ));
        let client = &config.clients[0];
        assert_eq!(client.client_name, "Web");
        assert_eq!(client.access_token_lifetime, Some(600));
        assert_eq!(client.access_token_format, Some(AccessTokenFormat::Reference));
        assert!(client.require_pushed_authorization && client.allow_offline_access);
        assert_eq!(client.allowed_grant_types, [GrantType::AuthorizationCode]);
        assert!(load_ok(&web("require_dpop = true")).clients[0].require_dpop);
        // A revoked grant is remembered for the longest-lived access token of any client.
        assert_eq!(config.settings.tokens.longest_access_token_lifetime, 3_600);
        let long = load_ok(&web("access_token_lifetime = \"2h\""));
        assert_eq!(long.settings.tokens.longest_access_token_lifetime, 7_200);
    }

    #[test]
    fn dpop_is_not_required_of_reference_tokens() {
        let errors = errors_of(&web("require_dpop = true\naccess_token_format = \"reference\""));
        assert!(has_error(&errors, WEB, "require_dpop"), "{errors:#?}");
    }

    #[test]
    fn keys_for_later_flows_are_accepted() {
        load_ok(&format!(
            "{BASE}{}",
            client(
                "svc",
                "allowed_grant_types = [\"urn:openid:params:grant-type:ciba\", \"urn:ietf:params:oauth:grant-type:token-exchange\"]\n\
                 client_secrets = [{ value = \"s\" }]\nciba_delivery_mode = \"ping\"\n\
                 backchannel_client_notification_endpoint = \"https://svc.example/cb\"\n\
                 refresh_token_expiration = \"sliding\"\nsliding_refresh_token_lifetime = \"15d\"\n\
                 token_exchange = { audiences = [\"api1\"], delegation = true, impersonation = false }"
            )
        ));
    }

    #[test]
    fn later_flow_keys_with_bad_values_are_errors() {
        let errors = errors_of(&service(
            "client_secrets = [{ value = \"s\" }]\nciba_delivery_mode = \"push\"\nrefresh_token_expiration = \"never\"\n\
             token_exchange = { audiences = [\"api2\"], delegation = \"yes\" }",
        ));
        assert!(has_error(&errors, SVC, "ciba_delivery_mode"), "{errors:#?}");
        assert!(has_error(&errors, SVC, "refresh_token_expiration"), "{errors:#?}");
        assert!(has_error(&errors, SVC, "token_exchange.audiences"), "{errors:#?}");
        assert!(has_error(&errors, SVC, "token_exchange.delegation"), "{errors:#?}");
    }

    #[test]
    fn ping_delivery_needs_a_notification_endpoint() {
        let errors =
            errors_of(&service("client_secrets = [{ value = \"s\" }]\nciba_delivery_mode = \"ping\""));
        assert!(has_error(&errors, SVC, "backchannel_client_notification_endpoint"), "{errors:#?}");
    }
}
