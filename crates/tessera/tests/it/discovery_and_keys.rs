//! Discovery (OpenID Connect Discovery 1.0, RFC 8414), the JWKS and key rotation.

use serde_json::Value;

use crate::support::TestServer;

const DAY: i64 = 86_400;

async fn get_json(app: &TestServer, path: &str) -> Value {
    let response = app.http.get(app.url(path)).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

#[tokio::test]
async fn both_discovery_documents_list_what_is_implemented() {
    let app = TestServer::spawn().await;
    for path in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"] {
        let metadata = get_json(&app, path).await;
        assert_eq!(metadata["issuer"], app.base);
        assert_eq!(metadata["token_endpoint"], app.url("/token"));
        assert_eq!(metadata["jwks_uri"], app.url("/jwks"));
        assert_eq!(metadata["introspection_endpoint"], app.url("/introspect"));
        assert_eq!(metadata["revocation_endpoint"], app.url("/revoke"));
        assert_eq!(
            metadata["grant_types_supported"],
            serde_json::json!([
                "client_credentials",
                "authorization_code",
                "refresh_token",
                "urn:ietf:params:oauth:grant-type:token-exchange",
                "urn:ietf:params:oauth:grant-type:device_code",
                "urn:openid:params:grant-type:ciba"
            ])
        );
        assert_eq!(metadata["response_types_supported"], serde_json::json!(["code"]));
        assert_eq!(metadata["authorization_endpoint"], app.url("/authorize"));
        assert_eq!(metadata["userinfo_endpoint"], app.url("/userinfo"));
        assert_eq!(metadata["end_session_endpoint"], app.url("/logout"));
        assert_eq!(metadata["pushed_authorization_request_endpoint"], app.url("/par"));
        assert_eq!(metadata["device_authorization_endpoint"], app.url("/device_authorization"));
        assert_eq!(metadata["backchannel_authentication_endpoint"], app.url("/bc-authorize"));
        assert_eq!(
            metadata["backchannel_token_delivery_modes_supported"],
            serde_json::json!(["poll", "ping"])
        );
        assert_eq!(metadata["authorization_response_iss_parameter_supported"], true);
        assert_eq!(metadata["code_challenge_methods_supported"], serde_json::json!(["S256"]));
        let methods = metadata["token_endpoint_auth_methods_supported"].as_array().unwrap();
        for method in ["client_secret_basic", "client_secret_post", "private_key_jwt"] {
            assert!(methods.iter().any(|m| m == method), "{method}");
        }
        let algs = metadata["token_endpoint_auth_signing_alg_values_supported"].as_array().unwrap();
        assert!(algs.iter().any(|a| a == "ES256") && !algs.iter().any(|a| a == "HS256" || a == "none"));
    }
    // The discovered jwks_uri serves the keys that sign tokens: the default ES256 and
    // the RS256 key OpenID Connect Discovery §3 requires for ID tokens.
    let jwks = get_json(&app, "/jwks").await;
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!((keys[0]["kty"].as_str(), keys[0]["alg"].as_str()), (Some("EC"), Some("ES256")));
    assert_eq!((keys[1]["kty"].as_str(), keys[1]["alg"].as_str()), (Some("RSA"), Some("RS256")));
    assert!(keys.iter().all(|key| key.get("d").is_none()), "no private part in the JWKS");
}

#[tokio::test]
async fn a_rotated_key_is_published_before_it_signs_and_kept_after() {
    let app = TestServer::spawn().await;
    let first_token = app.svc_token(&[]).await["access_token"].as_str().unwrap().to_owned();
    let first_kid = jsonwebtoken::decode_header(&first_token).unwrap().kid.unwrap();

    // 90d rotation, 14d announce: at day 76 the successor is created and published.
    app.clock.advance(76 * DAY);
    let jwks = get_json(&app, "/jwks").await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 4, "successors (ES256, RS256) announced");
    let token = app.svc_token(&[]).await["access_token"].as_str().unwrap().to_owned();
    assert_eq!(jsonwebtoken::decode_header(&token).unwrap().kid.unwrap(), first_kid, "old key still signs");

    app.clock.advance(14 * DAY);
    let token = app.svc_token(&[]).await["access_token"].as_str().unwrap().to_owned();
    let new_kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
    assert_ne!(new_kid, first_kid, "successor signs after the announce period");
    app.verify_jwt(&token).await;
    let jwks = get_json(&app, "/jwks").await;
    assert!(jwks["keys"].as_array().unwrap().iter().any(|k| k["kid"] == first_kid.as_str()), "retained");

    app.clock.advance(14 * DAY);
    let jwks = get_json(&app, "/jwks").await;
    assert!(
        !jwks["keys"].as_array().unwrap().iter().any(|k| k["kid"] == first_kid.as_str()),
        "dropped after retain"
    );
}

#[tokio::test]
async fn every_configured_algorithm_signs_tokens_that_verify_with_the_jwks() {
    for (algorithm, kty) in [("EdDSA", "OKP"), ("RS256", "RSA"), ("PS256", "RSA"), ("ES256", "EC")] {
        let app = TestServer::spawn_with_env("", &[("TESSERA__SIGNING__ALGORITHM", algorithm)]).await;
        let token = app.svc_token(&[]).await["access_token"].as_str().unwrap().to_owned();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(format!("{:?}", header.alg), algorithm);
        let jwks = get_json(&app, "/jwks").await;
        assert_eq!(jwks["keys"][0]["kty"], kty, "{algorithm}");
        assert_eq!(app.verify_jwt(&token).await["client_id"], "svc", "{algorithm}");
        app.stop().await;
    }
}

#[tokio::test]
async fn private_keys_are_stored_encrypted() {
    let app = TestServer::spawn().await;
    let keys = app.provider.store.signing_keys().await.unwrap();
    assert_eq!(keys.len(), 2, "ES256 and RS256");
    for key in &keys {
        assert!(key.sealed, "{}", key.kid);
        // A PKCS#8 key starts with a DER SEQUENCE (0x30); sealed bytes start with a random nonce.
        assert!(key.private_key.len() > 12 + 16);
    }
}
