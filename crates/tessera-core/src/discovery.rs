//! Server metadata: OpenID Connect Discovery 1.0 §3 and RFC 8414 §2, listing only
//! what is implemented.

use serde_json::{Value, json};

use crate::Provider;
use crate::client_auth::allowed_assertion_algorithms;

/// The metadata document served at both well-known paths.
#[must_use]
pub fn metadata(provider: &Provider) -> Value {
    let settings = &provider.settings;
    let mut auth_methods = vec!["client_secret_basic", "client_secret_post", "private_key_jwt"];
    if settings.mtls.enabled {
        auth_methods.extend(["tls_client_auth", "self_signed_tls_client_auth"]);
    }
    let mut token_auth_methods = auth_methods.clone();
    token_auth_methods.push("none");
    let signing_algorithms: Vec<&str> = settings.signing.algorithms.iter().map(|alg| alg.as_str()).collect();
    let grants: Vec<&str> = provider.grants.supported().into_iter().map(|g| g.as_str()).collect();
    let mut metadata = json!({
        "issuer": settings.issuer,
        "authorization_endpoint": settings.endpoint("/authorize"),
        "token_endpoint": settings.endpoint("/token"),
        "userinfo_endpoint": settings.endpoint("/userinfo"),
        "end_session_endpoint": settings.endpoint("/logout"),
        "pushed_authorization_request_endpoint": settings.endpoint("/par"),
        "device_authorization_endpoint": settings.endpoint("/device_authorization"),
        "backchannel_authentication_endpoint": settings.endpoint("/bc-authorize"),
        "backchannel_token_delivery_modes_supported": ["poll", "ping"],
        "backchannel_user_code_parameter_supported": false,
        "require_pushed_authorization_requests": false,
        "jwks_uri": settings.endpoint("/jwks"),
        "introspection_endpoint": settings.endpoint("/introspect"),
        "revocation_endpoint": settings.endpoint("/revoke"),
        "grant_types_supported": grants,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "authorization_response_iss_parameter_supported": true,
        "claims_supported": claims_supported(provider),
        "token_endpoint_auth_methods_supported": token_auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": allowed_assertion_algorithms(),
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_signing_alg_values_supported": allowed_assertion_algorithms(),
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_signing_alg_values_supported": allowed_assertion_algorithms(),
        "pushed_authorization_request_endpoint_auth_methods_supported": auth_methods,
        "scopes_supported": provider.catalog.scope_names(),
        "code_challenge_methods_supported": ["S256"],
        "dpop_signing_alg_values_supported": crate::sender::dpop::algorithm_names(),
        "subject_types_supported": ["public"],
        "acr_values_supported": crate::mfa::ACR_VALUES_SUPPORTED,
        // OpenID Connect Discovery §3: RS256 is always among them (config adds it).
        "id_token_signing_alg_values_supported": signing_algorithms,
        "access_token_signing_alg_values_supported": signing_algorithms,
    });
    if settings.mtls.enabled {
        metadata["tls_client_certificate_bound_access_tokens"] = json!(true);
    }
    // RFC 8414 §2, RFC 7591 §3: only when clients may register.
    if settings.registration.enabled {
        metadata["registration_endpoint"] = json!(settings.endpoint("/register"));
    }
    // draft-ietf-oauth-client-id-metadata-document §5: URL client_ids are resolved.
    if settings.metadata_documents.enabled {
        metadata["client_id_metadata_document_supported"] = json!(true);
    }
    // RFC 8705 §5: where the endpoints that take client certificates are, when that is
    // another host or port than the issuer's.
    if settings.mtls.endpoint_base.is_some() {
        metadata["mtls_endpoint_aliases"] = json!({
            "token_endpoint": settings.mtls_endpoint("/token"),
            "revocation_endpoint": settings.mtls_endpoint("/revoke"),
            "introspection_endpoint": settings.mtls_endpoint("/introspect"),
            "pushed_authorization_request_endpoint": settings.mtls_endpoint("/par"),
            "device_authorization_endpoint": settings.mtls_endpoint("/device_authorization"),
            "backchannel_authentication_endpoint": settings.mtls_endpoint("/bc-authorize"),
            "userinfo_endpoint": settings.mtls_endpoint("/userinfo"),
        });
    }
    metadata
}

/// Every claim the identity resources can release, `sub` and the ID token's own first.
fn claims_supported(provider: &Provider) -> Vec<String> {
    let mut claims: Vec<String> =
        ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "sid", "amr", "acr"]
            .map(str::to_owned)
            .to_vec();
    for resource in &provider.catalog.resources().identity_resources {
        for claim in &resource.user_claims {
            if !claims.contains(claim) {
                claims.push(claim.clone());
            }
        }
    }
    claims
}
