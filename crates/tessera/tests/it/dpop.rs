//! DPoP (RFC 9449): sender-constrained access and refresh tokens, and the proofs' checks.

use serde_json::{Value, json};

use crate::browser::{Browser, query};
use crate::code_flow::{authorization_url, web_tokens};
use crate::support::{ClientKey, TestServer, oauth_error};

/// Makes DPoP proofs with one key.
pub struct Prover {
    key: ClientKey,
}

impl Prover {
    pub fn new() -> Self {
        Self { key: ClientKey::generate("dpop") }
    }

    fn jwk(&self) -> jsonwebtoken::jwk::Jwk {
        let mut jwk = self.key.jwk.clone();
        jwk.as_object_mut().unwrap().remove("kid");
        serde_json::from_value(jwk).unwrap()
    }

    fn thumbprint(&self) -> String {
        self.jwk().thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256).unwrap()
    }

    /// A proof for `method` `url`, with `changes` applied to its claims.
    fn proof_with(&self, app: &TestServer, method: &str, url: &str, changes: &dyn Fn(&mut Value)) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(self.jwk());
        let now = tessera_core::Clock::now(app.clock.as_ref());
        let mut claims = json!({ "jti": tessera_core::random::Rng::default().identifier(), "htm": method, "htu": url, "iat": now });
        changes(&mut claims);
        jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_ec_der(&self.key.pkcs8))
            .unwrap()
    }

    pub fn proof(&self, app: &TestServer, method: &str, url: &str) -> String {
        self.proof_with(app, method, url, &|_| {})
    }

    /// A proof for a resource request with `access_token` (`ath`, RFC 9449 §4.2).
    pub fn proof_for(&self, app: &TestServer, method: &str, url: &str, access_token: &str) -> String {
        let ath = tessera_core::secret::b64url(tessera_core::secret::sha256(access_token.as_bytes()));
        self.proof_with(app, method, url, &|claims| claims["ath"] = json!(ath))
    }
}

async fn token_with(
    app: &TestServer,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
    proof: Option<&str>,
) -> reqwest::Response {
    let mut request = app.http.post(app.url("/token")).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_proof_binds_the_access_token_to_the_key() {
    let app = TestServer::spawn().await;
    let prover = Prover::new();
    let proof = prover.proof(&app, "POST", &app.url("/token"));
    let response =
        token_with(&app, Some(("svc", "svc-secret")), &[("grant_type", "client_credentials")], Some(&proof))
            .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    let token = body["access_token"].as_str().unwrap();
    let claims = app.verify_jwt(token).await;
    assert_eq!(claims["cnf"]["jkt"], prover.thumbprint(), "RFC 9449 §6.1");
    let response = app.post_form("/introspect", Some(("api1", "api1-secret")), &[("token", token)]).await;
    let introspected: Value = response.json().await.unwrap();
    assert_eq!(
        (introspected["token_type"].as_str(), introspected["cnf"]["jkt"].as_str()),
        (Some("DPoP"), Some(prover.thumbprint().as_str()))
    );
}

#[tokio::test]
async fn bad_proofs_are_invalid_dpop_proof() {
    let app = TestServer::spawn().await;
    let prover = Prover::new();
    let url = app.url("/token");
    let form = [("grant_type", "client_credentials")];
    let svc = Some(("svc", "svc-secret"));
    let replayed = prover.proof(&app, "POST", &url);
    assert_eq!(token_with(&app, svc, &form, Some(&replayed)).await.status(), 200);
    let mut cases: Vec<(&str, String)> = vec![
        ("replayed", replayed),
        ("wrong htu", prover.proof(&app, "POST", &app.url("/introspect"))),
        ("wrong htm", prover.proof(&app, "GET", &url)),
        (
            "old iat",
            prover.proof_with(&app, "POST", &url, &|c| c["iat"] = json!(c["iat"].as_i64().unwrap() - 600)),
        ),
        (
            "no jti",
            prover.proof_with(&app, "POST", &url, &|c| drop(c.as_object_mut().unwrap().remove("jti"))),
        ),
        ("garbage", "not-a-jwt".into()),
    ];
    // A symmetric key, a private key in the header, and the wrong typ.
    let hs = {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.typ = Some("dpop+jwt".into());
        let claims = json!({ "jti": "x", "htm": "POST", "htu": url, "iat": tessera_core::Clock::now(app.clock.as_ref()) });
        jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_secret(b"k")).unwrap()
    };
    cases.push(("hs256", hs));
    for (case, proof) in cases {
        let response = token_with(&app, svc, &form, Some(&proof)).await;
        assert_eq!(oauth_error(response).await, (400, "invalid_dpop_proof".into()), "{case}");
    }
}

#[tokio::test]
async fn a_proof_whose_jwk_carries_a_private_member_is_refused() {
    let app = TestServer::spawn().await;
    let prover = Prover::new();
    let url = app.url("/token");
    let form = [("grant_type", "client_credentials")];
    for member in ["d", "p", "q", "dp", "dq", "qi", "k"] {
        // RFC 9449 §4.3 item 6: the header's `jwk` must not hold a private key; the
        // member is written into the raw header, where a JWK type would drop it.
        let mut jwk = serde_json::to_value(prover.jwk()).unwrap();
        jwk[member] = json!("c2VjcmV0LWtleS1tYXRlcmlhbA");
        let header = json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": jwk });
        let now = tessera_core::Clock::now(app.clock.as_ref());
        let claims = json!({ "jti": format!("private-{member}"), "htm": "POST", "htu": url, "iat": now });
        let input = format!(
            "{}.{}",
            tessera_core::secret::b64url(header.to_string()),
            tessera_core::secret::b64url(claims.to_string())
        );
        let key = jsonwebtoken::EncodingKey::from_ec_der(&prover.key.pkcs8);
        let signature =
            jsonwebtoken::crypto::sign(input.as_bytes(), &key, jsonwebtoken::Algorithm::ES256).unwrap();
        let proof = format!("{input}.{signature}");
        let response = token_with(&app, Some(("svc", "svc-secret")), &form, Some(&proof)).await;
        assert_eq!(oauth_error(response).await, (400, "invalid_dpop_proof".into()), "{member}");
    }
}

#[tokio::test]
async fn userinfo_wants_the_proof_from_the_tokens_key() {
    let app = TestServer::spawn().await;
    let prover = Prover::new();
    let mut browser = Browser::new(&app);
    let (url, verifier) = authorization_url(&app, "web", "https://web.example/cb", "openid profile", &[]);
    let code = query(&browser.authorize(&url, "alice", "alice-password-1").await, "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("code_verifier", verifier.as_str()),
        ("redirect_uri", "https://web.example/cb"),
    ];
    let proof = prover.proof(&app, "POST", &app.url("/token"));
    let tokens: Value =
        token_with(&app, Some(("web", "web-secret")), &form, Some(&proof)).await.json().await.unwrap();
    let token = tokens["access_token"].as_str().unwrap();
    let userinfo = app.url("/userinfo");

    let as_bearer = app.http.get(&userinfo).bearer_auth(token).send().await.unwrap();
    assert_eq!(as_bearer.status(), 401, "RFC 9449 §7.2: a bound token is no bearer token");
    let ok = app
        .http
        .get(&userinfo)
        .header("Authorization", format!("DPoP {token}"))
        .header("DPoP", prover.proof_for(&app, "GET", &userinfo, token))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.json::<Value>().await.unwrap()["sub"], "alice-sub");

    let stranger = Prover::new();
    let other_key = app
        .http
        .get(&userinfo)
        .header("Authorization", format!("DPoP {token}"))
        .header("DPoP", stranger.proof_for(&app, "GET", &userinfo, token))
        .send()
        .await
        .unwrap();
    assert_eq!(other_key.status(), 401, "a proof from another key");
    let no_proof =
        app.http.get(&userinfo).header("Authorization", format!("DPoP {token}")).send().await.unwrap();
    assert_eq!(no_proof.status(), 401);
    assert!(no_proof.headers()["www-authenticate"].to_str().unwrap().starts_with("DPoP "));
    let no_ath = app
        .http
        .get(&userinfo)
        .header("Authorization", format!("DPoP {token}"))
        .header("DPoP", prover.proof(&app, "GET", &userinfo))
        .send()
        .await
        .unwrap();
    assert_eq!(no_ath.status(), 401, "ath required with a token");

    // An unbound token sent with the DPoP scheme is refused too.
    let plain = web_tokens(&app, &mut browser, "openid").await;
    let plain = plain["access_token"].as_str().unwrap();
    let response = app
        .http
        .get(&userinfo)
        .header("Authorization", format!("DPoP {plain}"))
        .header("DPoP", prover.proof_for(&app, "GET", &userinfo, plain))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn a_public_clients_refresh_token_stays_bound_to_its_key() {
    let app = TestServer::spawn().await;
    let prover = Prover::new();
    let mut browser = Browser::new(&app);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let redirect_uri = format!("http://127.0.0.1:{}/callback", listener.local_addr().unwrap().port());
    let (url, verifier) = authorization_url(&app, "native", &redirect_uri, "openid offline_access", &[]);
    let code = query(&browser.authorize(&url, "alice", "alice-password-1").await, "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", "native"),
        ("code", code.as_str()),
        ("code_verifier", verifier.as_str()),
        ("redirect_uri", redirect_uri.as_str()),
    ];
    let token_url = app.url("/token");
    let tokens: Value = token_with(&app, None, &form, Some(&prover.proof(&app, "POST", &token_url)))
        .await
        .json()
        .await
        .unwrap();
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    let refresh =
        [("grant_type", "refresh_token"), ("client_id", "native"), ("refresh_token", refresh_token.as_str())];

    let response = token_with(&app, None, &refresh, None).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_dpop_proof".into()), "no proof");
    let stranger = Prover::new();
    let response = token_with(&app, None, &refresh, Some(&stranger.proof(&app, "POST", &token_url))).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_dpop_proof".into()), "another key");
    let response = token_with(&app, None, &refresh, Some(&prover.proof(&app, "POST", &token_url))).await;
    assert_eq!(response.status(), 200, "the refused attempts used nothing up");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    // The successor is bound to the same key.
    let next = [
        ("grant_type", "refresh_token"),
        ("client_id", "native"),
        ("refresh_token", body["refresh_token"].as_str().unwrap()),
    ];
    let response = token_with(&app, None, &next, Some(&stranger.proof(&app, "POST", &token_url))).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_dpop_proof".into()));
}

#[tokio::test]
async fn a_client_that_requires_dpop_gets_no_token_without_a_proof() {
    let app = TestServer::spawn_with(
        r#"
[[clients]]
client_id = "strict"
allowed_grant_types = ["client_credentials"]
client_secrets = [{ value = "strict-secret" }]
allowed_scopes = ["api1.read"]
require_dpop = true
"#,
    )
    .await;
    let form = [("grant_type", "client_credentials")];
    let response = token_with(&app, Some(("strict", "strict-secret")), &form, None).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_dpop_proof".into()));
    let proof = Prover::new().proof(&app, "POST", &app.url("/token"));
    let response = token_with(&app, Some(("strict", "strict-secret")), &form, Some(&proof)).await;
    assert_eq!(response.json::<Value>().await.unwrap()["token_type"], "DPoP");
}

#[tokio::test]
async fn dpop_jkt_at_authorize_binds_the_code_to_the_key() {
    let app = TestServer::spawn().await;
    let prover = Prover::new();
    let token_url = app.url("/token");
    let redeem = async |browser: &mut Browser<'_>, proof: Option<String>| {
        let jkt = prover.thumbprint();
        let (url, verifier) = authorization_url(
            &app,
            "trusted",
            "https://trusted.example/cb",
            "openid",
            &[("dpop_jkt", jkt.as_str())],
        );
        let code = query(&browser.authorize(&url, "alice", "alice-password-1").await, "code").unwrap();
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("code_verifier", verifier.as_str()),
            ("redirect_uri", "https://trusted.example/cb"),
        ];
        token_with(&app, Some(("trusted", "trusted-secret")), &form, proof.as_deref()).await
    };
    let mut browser = Browser::new(&app);
    let response = redeem(&mut browser, None).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_dpop_proof".into()), "no proof");
    let response = redeem(&mut browser, Some(Prover::new().proof(&app, "POST", &token_url))).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_dpop_proof".into()), "another key");
    let response = redeem(&mut browser, Some(prover.proof(&app, "POST", &token_url))).await;
    assert_eq!(response.status(), 200);

    let (url, _) =
        authorization_url(&app, "trusted", "https://trusted.example/cb", "openid", &[("dpop_jkt", "short")]);
    let page = browser.get(&url).await;
    let location = page.location.unwrap();
    assert!(location.contains("error=invalid_request"), "{location}");
}

#[tokio::test]
async fn with_nonces_on_a_proof_must_carry_a_fresh_server_nonce() {
    let app = TestServer::spawn_with("[dpop]\nrequire_nonce = true\n").await;
    let prover = Prover::new();
    let token_url = app.url("/token");
    let form = [("grant_type", "client_credentials")];
    let svc = Some(("svc", "svc-secret"));
    let response = token_with(&app, svc, &form, Some(&prover.proof(&app, "POST", &token_url))).await;
    let nonce = response.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    assert_eq!(oauth_error(response).await, (400, "use_dpop_nonce".into()), "RFC 9449 §8");
    let with_nonce =
        |nonce: String| prover.proof_with(&app, "POST", &token_url, &move |c| c["nonce"] = json!(nonce));
    let response = token_with(&app, svc, &form, Some(&with_nonce(nonce.clone()))).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("dpop-nonce"), "the next nonce comes with every answer");
    // Still good in the next window; stale after that.
    app.clock.advance(300);
    assert_eq!(token_with(&app, svc, &form, Some(&with_nonce(nonce.clone()))).await.status(), 200);
    app.clock.advance(600);
    let response = token_with(&app, svc, &form, Some(&with_nonce(nonce))).await;
    assert_eq!(oauth_error(response).await, (400, "use_dpop_nonce".into()));
    let forged = token_with(&app, svc, &form, Some(&with_nonce("made-up".into()))).await;
    assert_eq!(oauth_error(forged).await, (400, "use_dpop_nonce".into()));
}
