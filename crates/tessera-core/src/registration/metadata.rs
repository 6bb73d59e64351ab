//! Client metadata (RFC 7591 §2) and the rules a registered client is held to: OAuth
//! 2.1's (the code flow with PKCE, optionally refresh tokens; redirect URIs without
//! fragments, https for web clients, loopback or a private-use scheme for native
//! ones), wherever the metadata comes from (a registration, a client ID metadata
//! document). Pure rules: nothing here reads the store.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use crate::model::{AuthMethod, Client, ClientCredential, ClientId, GrantType};
use crate::secret::SecretHash;
use crate::{ErrorCode, OAuthError, Timestamp};

const MAX_URIS: usize = 20;
const MAX_URI_LENGTH: usize = 2000;
const MAX_TEXT_LENGTH: usize = 200;
const MAX_CONTACTS: usize = 10;

/// Client metadata (RFC 7591 §2; `post_logout_redirect_uris` from OpenID Connect
/// RP-Initiated Logout §3.1; `dpop_bound_access_tokens` from RFC 9449 §5.2). Fields
/// this server does not know are ignored, as §2 asks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientMetadata {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirect_uris: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grant_types: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_types: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_bound_access_tokens: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post_logout_redirect_uris: Vec<String>,
}

/// What a dynamically registered client carries besides its client settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    /// The hash of the current registration access token (RFC 7592 §1).
    pub access_token: SecretHash,
    pub issued_at: Timestamp,
    /// The metadata as registered, defaults filled in.
    pub metadata: ClientMetadata,
}

pub(super) fn metadata_error(description: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClientMetadata, description.into())
}

pub(super) fn redirect_error(description: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidRedirectUri, description.into())
}

/// Parses a registration request body.
///
/// # Errors
/// `invalid_client_metadata` when it is not a JSON object of the right shapes.
pub fn parse(body: &[u8]) -> Result<ClientMetadata, OAuthError> {
    serde_json::from_slice(body)
        .map_err(|error| metadata_error(format!("the body is not client metadata: {error}")))
}

/// How a registered client authenticates, and the credential it gets.
pub(super) enum Authentication {
    None,
    Secret,
    Keys(Vec<ClientCredential>),
}

/// A new registration, checked: the client to store and what to answer.
pub(super) struct Checked {
    pub(super) client: Client,
    pub(super) metadata: ClientMetadata,
    pub(super) authentication: Authentication,
}

/// The client `metadata` describes, held to the same rules as a registration (a
/// client ID metadata document's client, say), with `allowed_scopes` its limit.
///
/// # Errors
/// `invalid_client_metadata` / `invalid_redirect_uri` as [`register`].
pub fn client_for(
    client_id: &ClientId,
    metadata: ClientMetadata,
    allowed_scopes: &[String],
) -> Result<Client, OAuthError> {
    check(allowed_scopes, client_id, metadata).map(|checked| checked.client)
}

/// RFC 7591 §2 with OAuth 2.1's rules, for a client called `client_id`.
pub(super) fn check(
    allowed_scopes: &[String],
    client_id: &ClientId,
    mut metadata: ClientMetadata,
) -> Result<Checked, OAuthError> {
    let native = match metadata.application_type.as_deref() {
        None | Some("web") => false,
        Some("native") => true,
        Some(other) => {
            return Err(metadata_error(format!("application_type `{other}` is not web or native")));
        }
    };
    metadata.application_type = Some(if native { "native" } else { "web" }.to_owned());

    // Grant and response types (§2.1): the code flow, and refresh tokens if asked.
    if metadata.grant_types.is_empty() {
        metadata.grant_types = vec!["authorization_code".to_owned()];
    }
    for grant in &metadata.grant_types {
        if grant != "authorization_code" && grant != "refresh_token" {
            return Err(metadata_error(format!(
                "grant type `{grant}` is not available to registered clients (authorization_code, refresh_token)"
            )));
        }
    }
    if !metadata.grant_types.iter().any(|grant| grant == "authorization_code") {
        return Err(metadata_error("grant_types must include authorization_code"));
    }
    if metadata.response_types.is_empty() {
        metadata.response_types = vec!["code".to_owned()];
    }
    if metadata.response_types.iter().any(|response| response != "code") {
        return Err(metadata_error("the only response type is `code` (OAuth 2.1)"));
    }
    metadata.grant_types.dedup();
    metadata.response_types.dedup();

    // Scopes: within what registration allows; all of it when none is named.
    let mut scopes: Vec<String> = match metadata.scope.as_deref() {
        None => allowed_scopes.to_vec(),
        Some(text) => text.split(' ').filter(|scope| !scope.is_empty()).map(str::to_owned).collect(),
    };
    let mut offline = metadata.grant_types.iter().any(|grant| grant == "refresh_token");
    if scopes.iter().any(|scope| scope == crate::catalog::OFFLINE_ACCESS) {
        offline = true;
        scopes.retain(|scope| scope != crate::catalog::OFFLINE_ACCESS);
    }
    if let Some(refused) = scopes.iter().find(|scope| !allowed_scopes.contains(scope)) {
        return Err(metadata_error(format!("scope `{refused}` may not be registered")));
    }
    scopes.dedup();
    if offline && !metadata.grant_types.iter().any(|grant| grant == "refresh_token") {
        metadata.grant_types.push("refresh_token".to_owned());
    }
    let mut registered_scope = scopes.clone();
    if offline {
        registered_scope.push(crate::catalog::OFFLINE_ACCESS.to_owned());
    }
    metadata.scope = Some(registered_scope.join(" "));

    // Redirect URIs (§2, RFC 8252 §7, RFC 9700 §4.1).
    if metadata.redirect_uris.is_empty() {
        return Err(redirect_error("redirect_uris is required for the authorization code flow"));
    }
    for list in [&metadata.redirect_uris, &metadata.post_logout_redirect_uris] {
        if list.len() > MAX_URIS {
            return Err(redirect_error(format!("at most {MAX_URIS} redirect URIs")));
        }
        for uri in list {
            check_redirect_uri(uri, native)?;
        }
    }

    // Informational URIs are shown to users: https only.
    for (name, value) in [
        ("client_uri", &metadata.client_uri),
        ("logo_uri", &metadata.logo_uri),
        ("tos_uri", &metadata.tos_uri),
        ("policy_uri", &metadata.policy_uri),
    ] {
        if let Some(value) = value {
            let https = value.len() <= MAX_URI_LENGTH
                && is_uri_text(value)
                && Url::parse(value).is_ok_and(|url| url.scheme() == "https");
            if !https {
                return Err(metadata_error(format!("{name} must be an https URL")));
            }
        }
    }
    for (name, value) in [
        ("client_name", &metadata.client_name),
        ("software_id", &metadata.software_id),
        ("software_version", &metadata.software_version),
    ] {
        if let Some(value) = value
            && (value.chars().count() > MAX_TEXT_LENGTH || value.chars().any(char::is_control))
        {
            return Err(metadata_error(format!(
                "{name} must be at most {MAX_TEXT_LENGTH} characters of text"
            )));
        }
    }
    if metadata.contacts.len() > MAX_CONTACTS
        || metadata.contacts.iter().any(|c| c.len() > MAX_TEXT_LENGTH || c.chars().any(char::is_control))
    {
        return Err(metadata_error(format!(
            "at most {MAX_CONTACTS} contacts of {MAX_TEXT_LENGTH} characters"
        )));
    }

    // Client authentication (§2: client_secret_basic when not named).
    let method = metadata.token_endpoint_auth_method.get_or_insert_with(|| "client_secret_basic".to_owned());
    let authentication = match method.as_str() {
        "none" => Authentication::None,
        "client_secret_basic" | "client_secret_post" => Authentication::Secret,
        "private_key_jwt" => Authentication::Keys(keys(&metadata)?),
        other => {
            return Err(metadata_error(format!(
                "token_endpoint_auth_method `{other}` is not one of none, client_secret_basic, client_secret_post, private_key_jwt"
            )));
        }
    };
    if metadata.jwks.is_some() && metadata.jwks_uri.is_some() {
        return Err(metadata_error("jwks and jwks_uri must not both be present (RFC 7591 §2)"));
    }

    let (credentials, auth_methods) = match &authentication {
        Authentication::None => (Vec::new(), vec![AuthMethod::None]),
        // Both secret methods: libraries register one and often use the other.
        Authentication::Secret => {
            (Vec::new(), vec![AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost])
        }
        Authentication::Keys(keys) => (keys.clone(), vec![AuthMethod::PrivateKeyJwt]),
    };
    let client = Client {
        client_id: client_id.clone(),
        client_name: metadata.client_name.clone().unwrap_or_else(|| client_id.to_string()),
        allowed_grant_types: vec![GrantType::AuthorizationCode],
        credentials,
        auth_methods,
        redirect_uris: metadata.redirect_uris.clone(),
        post_logout_redirect_uris: metadata.post_logout_redirect_uris.clone(),
        allowed_scopes: scopes,
        allow_offline_access: offline,
        // Nobody vouched for a self-registered client: its user always decides.
        require_consent: true,
        require_dpop: metadata.dpop_bound_access_tokens.unwrap_or(false),
        require_pushed_authorization: false,
        access_token_lifetime: None,
        access_token_format: None,
        refresh_token_expiration: crate::settings::RefreshExpiration::Absolute,
        sliding_refresh_token_lifetime: 0,
        token_exchange: None,
        ciba_delivery_mode: crate::model::CibaDeliveryMode::Poll,
        backchannel_client_notification_endpoint: None,
        allowed_cors_origins: Vec::new(),
        refresh_token_rotation: true,
        id_token_signed_response_alg: None,
        access_token_signing_alg: None,
        registration: None,
        from_metadata_document: false,
        require_mfa: false,
    };
    Ok(Checked { client, metadata, authentication })
}

/// A redirect URI a registered client may use: absolute, no fragment (RFC 6749
/// §3.1.2); https for web clients, http only on a loopback host; native clients may
/// also use loopback http on any port and private-use schemes (RFC 8252 §7).
fn check_redirect_uri(uri: &str, native: bool) -> Result<(), OAuthError> {
    if uri.len() > MAX_URI_LENGTH {
        return Err(redirect_error(format!("redirect URIs are at most {MAX_URI_LENGTH} characters")));
    }
    if !is_uri_text(uri) {
        return Err(redirect_error(
            "a redirect URI has spaces, control or other characters a URI cannot hold",
        ));
    }
    // First the rules every registered client keeps (absolute, no fragment, no scheme
    // that runs script or reads files), then the stricter ones for self-registration.
    crate::model::redirect_uri(uri).map_err(redirect_error)?;
    let url = Url::parse(uri).map_err(|_| redirect_error(format!("`{uri}` is not an absolute URI")))?;
    if uri.contains('#') {
        return Err(redirect_error(format!("`{uri}` has a fragment")));
    }
    if url.username() != "" || url.password().is_some() {
        return Err(redirect_error(format!("`{uri}` carries credentials")));
    }
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"));
    match url.scheme() {
        "https" if url.host_str().is_some() => Ok(()),
        "http" if loopback => Ok(()),
        "http" => {
            Err(redirect_error(format!("`{uri}`: http only on loopback (127.0.0.1, [::1], localhost)")))
        }
        "ftp" | "ws" | "wss" => {
            Err(redirect_error(format!("`{uri}`: scheme `{}` is not a redirect", url.scheme())))
        }
        // RFC 8252 §7.1: a private-use scheme, for native apps only.
        _ if native => Ok(()),
        scheme => Err(redirect_error(format!(
            "`{uri}`: a web client's redirect URIs are https (scheme `{scheme}` is for native clients)"
        ))),
    }
}

/// Whether `text` holds only characters a URI may (RFC 3986 §2): no whitespace, no
/// controls, none of the characters that must be escaped; such a URI would be altered
/// on its way to the browser.
fn is_uri_text(text: &str) -> bool {
    text.chars()
        .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '<' | '>' | '\\' | '^' | '`' | '{' | '|' | '}'))
}

/// The keys of a `private_key_jwt` client: its `jwks` (public keys only) or `jwks_uri`.
pub(super) fn keys(metadata: &ClientMetadata) -> Result<Vec<ClientCredential>, OAuthError> {
    match (&metadata.jwks, &metadata.jwks_uri) {
        (Some(_), Some(_)) => Err(metadata_error("jwks and jwks_uri must not both be present (RFC 7591 §2)")),
        (None, None) => Err(metadata_error("private_key_jwt needs jwks or jwks_uri")),
        (None, Some(uri)) => {
            let https =
                uri.len() <= MAX_URI_LENGTH && Url::parse(uri).is_ok_and(|url| url.scheme() == "https");
            if !https {
                return Err(metadata_error("jwks_uri must be an https URL"));
            }
            Ok(vec![ClientCredential::JwksUri { jwks_uri: uri.clone(), expires: None }])
        }
        (Some(jwks), None) => {
            let keys = jwks
                .get("keys")
                .and_then(Value::as_array)
                .filter(|keys| !keys.is_empty() && keys.len() <= 10);
            let Some(keys) = keys else {
                return Err(metadata_error("jwks must hold between one and ten keys"));
            };
            keys.iter()
                .map(|key| {
                    let usable = key.is_object()
                        && jsonwebtoken::jwk::Jwk::deserialize(key).is_ok()
                        && ["d", "p", "q", "dp", "dq", "qi", "k"]
                            .iter()
                            .all(|private| key.get(private).is_none());
                    if usable {
                        Ok(ClientCredential::Jwk { jwk: key.clone(), expires: None })
                    } else {
                        Err(metadata_error("jwks must hold public keys only"))
                    }
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_redirects_are_https_or_loopback_http_and_native_ones_may_use_private_schemes() {
        for ok in
            ["https://app.example/cb", "http://127.0.0.1:8080/cb", "http://localhost/cb", "http://[::1]/cb"]
        {
            assert!(check_redirect_uri(ok, false).is_ok(), "{ok}");
            assert!(check_redirect_uri(ok, true).is_ok(), "{ok}");
        }
        assert!(check_redirect_uri("com.example.app:/callback", true).is_ok());
        for refused in [
            "http://app.example/cb",
            "https://app.example/cb#x",
            "https://app.example/cb#",
            "/relative",
            "javascript:alert(1)",
            "data:text/html,x",
            "https://user:pw@app.example/cb",
        ] {
            for native in [false, true] {
                let error = check_redirect_uri(refused, native).unwrap_err();
                assert_eq!(error.code, ErrorCode::InvalidRedirectUri, "{refused}");
            }
        }
        assert!(
            check_redirect_uri("com.example.app:/callback", false).is_err(),
            "private schemes are native"
        );
    }
}
