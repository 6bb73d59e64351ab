//! Refresh-token rotation with reuse detection (RFC 9700 §4.14.2), code single use
//! (RFC 6749 §4.1.2) and their races.

use std::sync::Arc;

use serde_json::Value;

use crate::browser::{Browser, query};
use crate::code_flow::{authorization_url, redeem, web_tokens};
use crate::support::{TestServer, oauth_error};

async fn refresh(app: &TestServer, token: &str, scope: Option<&str>) -> reqwest::Response {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    app.post_form("/token", Some(("web", "web-secret")), &form).await
}

async fn introspect_active(app: &TestServer, token: &str) -> bool {
    let response = app.post_form("/introspect", Some(("web", "web-secret")), &[("token", token)]).await;
    response.json::<Value>().await.unwrap()["active"].as_bool().unwrap()
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_family() {
    let app = TestServer::spawn().await;
    let mut browser = Browser::new(&app);
    let first = web_tokens(&app, &mut browser, "openid api1.read offline_access").await;
    let r1 = first["refresh_token"].as_str().unwrap().to_owned();

    let response = refresh(&app, &r1, None).await;
    assert_eq!(response.status(), 200);
    let second: Value = response.json().await.unwrap();
    let r2 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(r1, r2, "rotated");
    assert!(second["id_token"].is_string());
    let a2 = second["access_token"].as_str().unwrap().to_owned();
    assert!(introspect_active(&app, &a2).await);

    // Another grant of the same user and client, which must survive.
    let other = web_tokens(&app, &mut browser, "openid api1.read offline_access").await;

    // The old token comes back: theft. It fails, and so does the newest one.
    assert_eq!(oauth_error(refresh(&app, &r1, None).await).await, (400, "invalid_grant".into()));
    assert_eq!(oauth_error(refresh(&app, &r2, None).await).await, (400, "invalid_grant".into()));
    assert!(!introspect_active(&app, &a2).await, "access tokens of the family are revoked");
    assert!(!introspect_active(&app, first["access_token"].as_str().unwrap()).await);

    assert!(introspect_active(&app, other["access_token"].as_str().unwrap()).await, "other grant untouched");
    assert_eq!(refresh(&app, other["refresh_token"].as_str().unwrap(), None).await.status(), 200);
}

#[tokio::test]
async fn refresh_may_narrow_but_never_widen_the_scope() {
    let app = TestServer::spawn().await;
    let mut browser = Browser::new(&app);
    let tokens = web_tokens(&app, &mut browser, "openid api1.read offline_access").await;
    let token = tokens["refresh_token"].as_str().unwrap();
    let response = refresh(&app, token, Some("email")).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_scope".into()));
    // The refused request used nothing up.
    let response = refresh(&app, token, Some("api1.read")).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scope"], "api1.read");
    assert!(body.get("id_token").is_none(), "no openid, no ID token");
}

#[tokio::test]
async fn a_refresh_token_works_only_for_its_client_and_until_it_expires() {
    let app = TestServer::spawn().await;
    let mut browser = Browser::new(&app);
    let tokens = web_tokens(&app, &mut browser, "openid offline_access").await;
    let token = tokens["refresh_token"].as_str().unwrap();
    let form = [("grant_type", "refresh_token"), ("refresh_token", token)];
    let response = app.post_form("/token", Some(("trusted", "trusted-secret")), &form).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_grant".into()));
    app.clock.advance(30 * 86_400);
    assert_eq!(oauth_error(refresh(&app, token, None).await).await, (400, "invalid_grant".into()));
}

#[tokio::test]
async fn no_refresh_token_without_offline_access() {
    let app = TestServer::spawn().await;
    let mut browser = Browser::new(&app);
    let tokens = web_tokens(&app, &mut browser, "openid").await;
    assert!(tokens.get("refresh_token").is_none());
}

#[tokio::test]
async fn a_reused_code_fails_and_revokes_the_tokens_issued_from_it() {
    let app = TestServer::spawn().await;
    let mut browser = Browser::new(&app);
    let (url, verifier) =
        authorization_url(&app, "web", "https://web.example/cb", "openid api1.read offline_access", &[]);
    let code = query(&browser.authorize(&url, "alice", "alice-password-1").await, "code").unwrap();
    let first: Value = redeem(&app, &code, &verifier, "https://web.example/cb").await.json().await.unwrap();
    assert!(introspect_active(&app, first["access_token"].as_str().unwrap()).await);
    let again = redeem(&app, &code, &verifier, "https://web.example/cb").await;
    assert_eq!(oauth_error(again).await, (400, "invalid_grant".into()));
    assert!(!introspect_active(&app, first["access_token"].as_str().unwrap()).await, "RFC 6749 §4.1.2");
    let response = refresh(&app, first["refresh_token"].as_str().unwrap(), None).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_grant".into()));
}

#[tokio::test]
async fn a_reused_code_revokes_reference_access_tokens_too() {
    let app = TestServer::spawn_with_env("", &[("TESSERA__TOKENS__ACCESS_TOKEN_FORMAT", "reference")]).await;
    let mut browser = Browser::new(&app);
    let (url, verifier) = authorization_url(&app, "web", "https://web.example/cb", "openid api1.read", &[]);
    let code = query(&browser.authorize(&url, "alice", "alice-password-1").await, "code").unwrap();
    let first: Value = redeem(&app, &code, &verifier, "https://web.example/cb").await.json().await.unwrap();
    let access_token = first["access_token"].as_str().unwrap();
    assert!(!access_token.contains('.'), "a reference token");
    assert!(introspect_active(&app, access_token).await);
    // Another sign-in of the same user and client is a separate grant.
    let other = web_tokens(&app, &mut Browser::new(&app), "openid api1.read").await;
    let again = redeem(&app, &code, &verifier, "https://web.example/cb").await;
    assert_eq!(oauth_error(again).await, (400, "invalid_grant".into()));
    assert!(!introspect_active(&app, access_token).await, "RFC 6749 §4.1.2");
    assert!(introspect_active(&app, other["access_token"].as_str().unwrap()).await, "other grants stay");
}

#[tokio::test]
async fn wrong_verifier_redirect_uri_and_expiry_are_invalid_grant() {
    let app = TestServer::spawn().await;
    let mut browser = Browser::new(&app);
    let code_for = async |browser: &mut Browser<'_>| {
        let (url, verifier) = authorization_url(&app, "web", "https://web.example/cb", "openid", &[]);
        (query(&browser.authorize(&url, "alice", "alice-password-1").await, "code").unwrap(), verifier)
    };
    let (code, _) = code_for(&mut browser).await;
    let wrong = tessera_core::random::Rng::default().token();
    let response = redeem(&app, &code, &wrong, "https://web.example/cb").await;
    assert_eq!(oauth_error(response).await, (400, "invalid_grant".into()), "wrong verifier");

    let (code, verifier) = code_for(&mut browser).await;
    let response = redeem(&app, &code, &verifier, "https://web.example/other-cb").await;
    assert_eq!(oauth_error(response).await, (400, "invalid_grant".into()), "other redirect_uri");

    let (code, verifier) = code_for(&mut browser).await;
    app.clock.advance(61);
    let response = redeem(&app, &code, &verifier, "https://web.example/cb").await;
    assert_eq!(oauth_error(response).await, (400, "invalid_grant".into()), "expired code");

    let response = redeem(&app, "never-issued", &verifier, "https://web.example/cb").await;
    assert_eq!(oauth_error(response).await, (400, "invalid_grant".into()), "unknown code");

    let form =
        [("grant_type", "authorization_code"), ("code", "x"), ("redirect_uri", "https://web.example/cb")];
    let response = app.post_form("/token", Some(("web", "web-secret")), &form).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_request".into()), "no code_verifier");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_redemptions_do_not_burn_the_code() {
    let app = Arc::new(TestServer::spawn().await);
    let mut browser = Browser::new(&app);
    let (url, verifier) = authorization_url(&app, "web", "https://web.example/cb", "openid", &[]);
    let code = query(&browser.authorize(&url, "alice", "alice-password-1").await, "code").unwrap();
    // Wrong verifier, wrong redirect_uri, none at all, and another client.
    let wrong_verifier = tessera_core::random::Rng::default().token();
    let response = redeem(&app, &code, &wrong_verifier, "https://web.example/cb").await;
    assert_eq!(oauth_error(response).await, (400, "invalid_grant".into()), "wrong verifier");
    let response = redeem(&app, &code, &verifier, "https://web.example/other-cb").await;
    assert_eq!(oauth_error(response).await, (400, "invalid_grant".into()), "other redirect_uri");
    let form = [("grant_type", "authorization_code"), ("code", code.as_str()), ("code_verifier", &verifier)];
    let response = app.post_form("/token", Some(("web", "web-secret")), &form).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_grant".into()), "no redirect_uri");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("code_verifier", &verifier),
        ("redirect_uri", "https://web.example/cb"),
    ];
    let response = app.post_form("/token", Some(("trusted", "trusted-secret")), &form).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_grant".into()), "another client");
    // A burst of 40 wrong verifiers at once burns nothing either.
    let attempts: Vec<_> = (0..40)
        .map(|_| {
            let (app, code) = (app.clone(), code.clone());
            tokio::spawn(async move {
                let wrong = tessera_core::random::Rng::default().token();
                oauth_error(redeem(&app, &code, &wrong, "https://web.example/cb").await).await
            })
        })
        .collect();
    for attempt in attempts {
        assert_eq!(attempt.await.unwrap(), (400, "invalid_grant".into()));
    }
    // The rightful redemption still works, once.
    let response = redeem(&app, &code, &verifier, "https://web.example/cb").await;
    assert_eq!(response.status(), 200);
    let response = redeem(&app, &code, &verifier, "https://web.example/cb").await;
    assert_eq!(oauth_error(response).await, (400, "invalid_grant".into()), "used once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_racing_redemptions_of_one_code_give_exactly_one_token() {
    let app = Arc::new(TestServer::spawn().await);
    let mut browser = Browser::new(&app);
    let (url, verifier) = authorization_url(&app, "web", "https://web.example/cb", "openid", &[]);
    let code = query(&browser.authorize(&url, "alice", "alice-password-1").await, "code").unwrap();
    let racers: Vec<_> = (0..50)
        .map(|_| {
            let (app, code, verifier) = (app.clone(), code.clone(), verifier.clone());
            tokio::spawn(async move {
                redeem(&app, &code, &verifier, "https://web.example/cb").await.status().as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for racer in racers {
        statuses.push(racer.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|&&s| s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|&&s| s == 400).count(), 49, "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_racing_refreshes_of_one_token_give_exactly_one_successor() {
    let app = Arc::new(TestServer::spawn().await);
    let mut browser = Browser::new(&app);
    let tokens = web_tokens(&app, &mut browser, "openid offline_access").await;
    let token = tokens["refresh_token"].as_str().unwrap().to_owned();
    let racers: Vec<_> = (0..50)
        .map(|_| {
            let (app, token) = (app.clone(), token.clone());
            tokio::spawn(async move { refresh(&app, &token, None).await.status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for racer in racers {
        statuses.push(racer.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|&&s| s == 200).count(), 1, "{statuses:?}");
}

#[tokio::test]
async fn sliding_refresh_tokens_lapse_when_unused_for_the_sliding_lifetime() {
    let app = TestServer::spawn_with(
        r#"
[[clients]]
client_id = "slider"
allowed_grant_types = ["authorization_code"]
client_secrets = [{ value = "slider-secret" }]
redirect_uris = ["https://slider.example/cb"]
allowed_scopes = ["openid"]
allow_offline_access = true
require_consent = false
refresh_token_expiration = "sliding"
sliding_refresh_token_lifetime = "1h"
"#,
    )
    .await;
    let mut browser = Browser::new(&app);
    let (url, verifier) =
        authorization_url(&app, "slider", "https://slider.example/cb", "openid offline_access", &[]);
    let code = query(&browser.authorize(&url, "alice", "alice-password-1").await, "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("code_verifier", verifier.as_str()),
        ("redirect_uri", "https://slider.example/cb"),
    ];
    let tokens: Value =
        app.post_form("/token", Some(("slider", "slider-secret")), &form).await.json().await.unwrap();
    let refresh_with = |token: String| {
        let app = &app;
        async move {
            let form = [("grant_type", "refresh_token"), ("refresh_token", token.as_str())];
            app.post_form("/token", Some(("slider", "slider-secret")), &form).await
        }
    };
    app.clock.advance(50 * 60);
    let response = refresh_with(tokens["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(response.status(), 200, "used within the hour");
    let next: Value = response.json().await.unwrap();
    app.clock.advance(61 * 60);
    let response = refresh_with(next["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(
        oauth_error(response).await,
        (400, "invalid_grant".into()),
        "idle longer than the sliding hour"
    );
}

#[tokio::test]
async fn revoking_a_refresh_token_revokes_its_grant() {
    let app = TestServer::spawn().await;
    let mut browser = Browser::new(&app);
    let tokens = web_tokens(&app, &mut browser, "openid api1.read offline_access").await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let access_token = tokens["access_token"].as_str().unwrap();

    let response =
        app.post_form("/revoke", Some(("trusted", "trusted-secret")), &[("token", refresh_token)]).await;
    assert_eq!(oauth_error(response).await, (400, "unauthorized_client".into()), "not the owner");
    assert!(introspect_active(&app, access_token).await, "a refused revocation changes nothing");

    let form = [("token", refresh_token), ("token_type_hint", "refresh_token")];
    assert_eq!(app.post_form("/revoke", Some(("web", "web-secret")), &form).await.status(), 200);
    assert_eq!(oauth_error(refresh(&app, refresh_token, None).await).await, (400, "invalid_grant".into()));
    assert!(!introspect_active(&app, access_token).await, "RFC 7009 §2.1: the grant's access tokens go too");
}

#[tokio::test]
async fn a_client_introspects_its_own_live_refresh_tokens() {
    let app = TestServer::spawn().await;
    let mut browser = Browser::new(&app);
    let tokens = web_tokens(&app, &mut browser, "openid api1.read offline_access").await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let response =
        app.post_form("/introspect", Some(("web", "web-secret")), &[("token", refresh_token)]).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!((body["active"].as_bool(), body["token_type"].as_str()), (Some(true), Some("refresh_token")));
    assert_eq!(body["sub"], "alice-sub");
    // Not another client's, not an API's, and not once used.
    let response =
        app.post_form("/introspect", Some(("trusted", "trusted-secret")), &[("token", refresh_token)]).await;
    assert_eq!(response.json::<Value>().await.unwrap()["active"], false);
    let response =
        app.post_form("/introspect", Some(("api1", "api1-secret")), &[("token", refresh_token)]).await;
    assert_eq!(response.json::<Value>().await.unwrap()["active"], false);
    assert_eq!(refresh(&app, refresh_token, None).await.status(), 200);
    assert!(!introspect_active(&app, refresh_token).await, "rotated away");
}

#[tokio::test]
async fn a_malformed_code_verifier_is_invalid_request_and_leaves_the_code_usable() {
    let app = TestServer::spawn().await;
    let mut browser = Browser::new(&app);
    let (url, verifier) = authorization_url(&app, "web", "https://web.example/cb", "openid", &[]);
    let code = query(&browser.authorize(&url, "alice", "alice-password-1").await, "code").unwrap();
    // RFC 7636 §4.1: 43 to 128 unreserved characters.
    for bad in ["short", &"a".repeat(129), &format!("{}+", "a".repeat(43))] {
        let response = redeem(&app, &code, bad, "https://web.example/cb").await;
        assert_eq!(oauth_error(response).await, (400, "invalid_request".into()), "{bad}");
    }
    assert_eq!(redeem(&app, &code, &verifier, "https://web.example/cb").await.status(), 200);
}
