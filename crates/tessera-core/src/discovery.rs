//! Server metadata: OpenID Connect Discovery 1.0 §3 and RFC 8414 §2, listing only
//! what is implemented.

use serde_json::{Value, json};

use crate::Provider;
use crate::client_auth::allowed_assertion_algorithms;

/// The metadata document served at both well-known paths.
#[must_use]
pub fn metadata(provider: &Provider) -> Value {
    let settings = &provider.settings;
    let auth_methods = ["client_secret_basic", "client_secret_post", "private_key_jwt"];
    let grants: Vec<&str> = provider.grants.supported().into_iter().map(|g| g.as_str()).collect();
    json!({
        "issuer": settings.issuer,
        "token_endpoint": settings.endpoint("/token"),
        "jwks_uri": settings.endpoint("/jwks"),
        "introspection_endpoint": settings.endpoint("/introspect"),
        "revocation_endpoint": settings.endpoint("/revoke"),
        "grant_types_supported": grants,
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": allowed_assertion_algorithms(),
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_signing_alg_values_supported": allowed_assertion_algorithms(),
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_signing_alg_values_supported": allowed_assertion_algorithms(),
        "scopes_supported": provider.catalog.scope_names(),
        "code_challenge_methods_supported": ["S256"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [settings.signing.algorithm.as_str()],
        "access_token_signing_alg_values_supported": [settings.signing.algorithm.as_str()],
    })
}
