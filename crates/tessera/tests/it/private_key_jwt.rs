//! `private_key_jwt` client authentication (RFC 7523 §2.2, §3).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use serde_json::{Value, json};

use crate::support::{ClientKey, TestServer, oauth_error};

fn inline_client(key: &ClientKey) -> String {
    format!(
        r#"
[[clients]]
client_id = "signer"
allowed_grant_types = ["client_credentials"]
client_secrets = [{{ jwk = {} }}]
allowed_scopes = ["api1.read"]
"#,
        key.toml_jwk()
    )
}

fn claims(app: &TestServer, jti: &str) -> Value {
    let now = tessera_core::Clock::now(app.clock.as_ref());
    json!({ "iss": "signer", "sub": "signer", "aud": app.url("/token"), "exp": now + 60, "iat": now, "jti": jti })
}

async fn token_with_assertion(app: &TestServer, assertion: &str) -> reqwest::Response {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
        ("client_assertion", assertion),
    ];
    app.post_form("/token", None, &form).await
}

#[tokio::test]
async fn client_with_an_inline_jwk_authenticates_with_a_signed_assertion() {
    let key = ClientKey::generate("client-key-1");
    let app = TestServer::spawn_with(&inline_client(&key)).await;
    let response = token_with_assertion(&app, &key.assertion(&claims(&app, "a1"))).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let token_claims = app.verify_jwt(body["access_token"].as_str().unwrap()).await;
    assert_eq!(token_claims["client_id"], "signer");
}

#[tokio::test]
async fn the_issuer_is_an_accepted_audience() {
    let key = ClientKey::generate("k");
    let app = TestServer::spawn_with(&inline_client(&key)).await;
    let mut claims = claims(&app, "aud-issuer");
    claims["aud"] = json!([app.base.clone()]);
    assert_eq!(token_with_assertion(&app, &key.assertion(&claims)).await.status(), 200);
}

#[tokio::test]
async fn an_audience_array_must_hold_the_issuer_alone() {
    let key = ClientKey::generate("k");
    let app = TestServer::spawn_with(&inline_client(&key)).await;
    // draft-ietf-oauth-rfc7523bis: an assertion also good for another server is refused.
    let refused = [
        json!([app.issuer.clone(), "https://other-issuer.example"]),
        json!(["https://other-issuer.example", app.issuer.clone()]),
        json!([app.url("/token")]),
        json!([app.issuer.clone(), app.url("/token")]),
        json!([]),
    ];
    for (i, aud) in refused.into_iter().enumerate() {
        let mut claims = claims(&app, &format!("aud-array-{i}"));
        claims["aud"] = aud.clone();
        let response = token_with_assertion(&app, &key.assertion(&claims)).await;
        assert_eq!(oauth_error(response).await, (400, "invalid_client".into()), "aud {aud}");
    }
    // The issuer or the token endpoint as one string still work (older clients).
    for (i, aud) in [json!(app.issuer.clone()), json!(app.url("/token"))].into_iter().enumerate() {
        let mut claims = claims(&app, &format!("aud-string-{i}"));
        claims["aud"] = aud.clone();
        assert_eq!(token_with_assertion(&app, &key.assertion(&claims)).await.status(), 200, "aud {aud}");
    }
}

/// Authlib signs every assertion for the token endpoint, revocation and introspection
/// included, and RFC 9126 §2 makes PAR accept it: the token endpoint's URL is a
/// good `aud` at every endpoint; another endpoint's URL only where it is called.
#[tokio::test]
async fn the_token_endpoint_is_an_accepted_audience_at_every_endpoint() {
    let key = ClientKey::generate("k");
    let config = format!(
        "{}
[[clients]]
client_id = \"pkjwt-web\"
allowed_grant_types = [\"authorization_code\"]
\
         client_secrets = [{{ jwk = {} }}]
redirect_uris = [\"https://pk.example/cb\"]
allowed_scopes = [\"openid\"]
",
        inline_client(&key),
        key.toml_jwk()
    );
    let app = TestServer::spawn_with(&config).await;
    let now = tessera_core::Clock::now(app.clock.as_ref());
    let assertion = |client: &str, jti: &str, aud: &str| {
        key.assertion(
            &json!({ "iss": client, "sub": client, "aud": aud, "exp": now + 3600, "iat": now, "jti": jti }),
        )
    };
    let token = app.url("/token");
    let form_with = |assertion: String, extra: Vec<(&'static str, String)>| {
        let mut form = vec![
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned()),
            ("client_assertion", assertion),
        ];
        form.extend(extra);
        form
    };
    let post = |path: &'static str, form: Vec<(&'static str, String)>| {
        let app = &app;
        async move { app.http.post(app.url(path)).form(&form).send().await.unwrap().status().as_u16() }
    };
    let revoke = form_with(assertion("signer", "r1", &token), vec![("token", "whatever".into())]);
    assert_eq!(post("/revoke", revoke).await, 200);
    let introspect = form_with(assertion("signer", "i1", &token), vec![("token", "whatever".into())]);
    assert_eq!(post("/introspect", introspect).await, 200);
    let par_fields = || {
        vec![
            ("client_id", "pkjwt-web".to_owned()),
            ("response_type", "code".to_owned()),
            ("redirect_uri", "https://pk.example/cb".to_owned()),
            ("scope", "openid".to_owned()),
            ("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned()),
            ("code_challenge_method", "S256".to_owned()),
        ]
    };
    assert_eq!(post("/par", form_with(assertion("pkjwt-web", "p1", &token), par_fields())).await, 201);
    // Another endpoint's URL is not the token endpoint's: refused at /revoke.
    let wrong = form_with(assertion("signer", "r2", &app.url("/introspect")), vec![("token", "x".into())]);
    assert_eq!(post("/revoke", wrong).await, 400);
}

#[tokio::test]
async fn a_replayed_assertion_is_invalid_client() {
    let key = ClientKey::generate("k");
    let app = TestServer::spawn_with(&inline_client(&key)).await;
    let assertion = key.assertion(&claims(&app, "once"));
    assert_eq!(token_with_assertion(&app, &assertion).await.status(), 200);
    assert_eq!(
        oauth_error(token_with_assertion(&app, &assertion).await).await,
        (400, "invalid_client".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_racing_uses_of_one_assertion_admit_exactly_one() {
    let key = ClientKey::generate("k");
    let app = Arc::new(TestServer::spawn_with(&inline_client(&key)).await);
    let assertion = Arc::new(key.assertion(&claims(&app, "race")));
    let attempts: Vec<_> = (0..50)
        .map(|_| {
            let (app, assertion) = (app.clone(), assertion.clone());
            tokio::spawn(async move { token_with_assertion(&app, &assertion).await.status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for attempt in attempts {
        statuses.push(attempt.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|&&s| s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|&&s| s == 400).count(), 49, "{statuses:?}");
}

#[tokio::test]
async fn bad_assertions_are_invalid_client() {
    let key = ClientKey::generate("k");
    let stranger = ClientKey::generate("k");
    let app = TestServer::spawn_with(&inline_client(&key)).await;
    let now = tessera_core::Clock::now(app.clock.as_ref());
    let with = |change: &dyn Fn(&mut Value)| {
        let mut claims = claims(&app, &format!("bad-{}", rand_suffix()));
        change(&mut claims);
        claims
    };
    let cases: Vec<(&str, String)> = vec![
        ("expired", key.assertion(&with(&|c| c["exp"] = json!(now - 120)))),
        ("exp too far ahead", key.assertion(&with(&|c| c["exp"] = json!(now + 2 * 3600)))),
        ("no exp", key.assertion(&with(&|c| drop(c.as_object_mut().unwrap().remove("exp"))))),
        ("wrong aud", key.assertion(&with(&|c| c["aud"] = json!("https://elsewhere.example/token")))),
        ("no jti", key.assertion(&with(&|c| drop(c.as_object_mut().unwrap().remove("jti"))))),
        ("iss differs", key.assertion(&with(&|c| c["iss"] = json!("someone-else")))),
        ("nbf in future", key.assertion(&with(&|c| c["nbf"] = json!(now + 600)))),
        (
            "unknown client",
            key.assertion(&with(&|c| {
                c["iss"] = json!("ghost");
                c["sub"] = json!("ghost");
            })),
        ),
        ("signed by another key", stranger.assertion(&with(&|_| {}))),
        ("hs256", hs256_assertion(&with(&|_| {}))),
        ("not a jwt", "not.a.jwt".to_owned()),
    ];
    for (case, assertion) in cases {
        let response = token_with_assertion(&app, &assertion).await;
        assert_eq!(oauth_error(response).await, (400, "invalid_client".into()), "case: {case}");
    }
}

#[tokio::test]
async fn an_unsupported_assertion_type_is_invalid_request() {
    let key = ClientKey::generate("k");
    let app = TestServer::spawn_with(&inline_client(&key)).await;
    let form = [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", "urn:example:saml"),
        ("client_assertion", &key.assertion(&claims(&app, "t"))),
    ];
    let response = app.post_form("/token", None, &form).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_request".into()));
}

#[tokio::test]
async fn a_secret_from_a_private_key_jwt_client_is_not_a_fallback() {
    let key = ClientKey::generate("k");
    let app = TestServer::spawn_with(&inline_client(&key)).await;
    let response =
        app.post_form("/token", Some(("signer", "anything")), &[("grant_type", "client_credentials")]).await;
    assert_eq!(oauth_error(response).await, (401, "invalid_client".into()));
}

#[tokio::test]
async fn an_assertion_for_a_secret_client_is_refused() {
    let key = ClientKey::generate("k");
    let app = TestServer::spawn().await;
    let mut claims = claims(&app, "svc-1");
    claims["iss"] = json!("svc");
    claims["sub"] = json!("svc");
    let response = token_with_assertion(&app, &key.assertion(&claims)).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_client".into()));
}

#[tokio::test]
async fn keys_are_fetched_from_the_clients_jwks_uri() {
    let key = ClientKey::generate("remote-1");
    let jwks = json!({ "keys": [key.jwk.clone()] });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jwks_url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let router =
        axum::Router::new().route("/jwks.json", axum::routing::get(move || async move { axum::Json(jwks) }));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let app = TestServer::spawn_with(&format!(
        r#"
[[clients]]
client_id = "signer"
allowed_grant_types = ["client_credentials"]
client_secrets = [{{ jwks_uri = "{jwks_url}" }}]
allowed_scopes = ["api1.read"]
"#
    ))
    .await;
    let response = token_with_assertion(&app, &key.assertion(&claims(&app, "remote"))).await;
    assert_eq!(response.status(), 200);
    let other = ClientKey::generate("remote-1");
    let response = token_with_assertion(&app, &other.assertion(&claims(&app, "remote-2"))).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_client".into()));
}

/// What a [`JwksHost`] answers.
#[derive(Clone, Copy)]
pub enum Answer {
    /// HTTP 500.
    Failure,
    /// A chunked JSON body that never ends (stops at 1 GiB or when the reader hangs up).
    Endless,
}

/// A `jwks_uri` host on a loopback port that counts the requests it gets and the body
/// bytes it manages to send.
pub struct JwksHost {
    pub url: String,
    pub fetches: Arc<AtomicUsize>,
    pub sent: Arc<AtomicUsize>,
}

pub async fn jwks_host(answer: Answer) -> JwksHost {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let (fetches, sent) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (counted, written) = (fetches.clone(), sent.clone());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (counted, written) = (counted.clone(), written.clone());
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0_u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                counted.fetch_add(1, Ordering::SeqCst);
                match answer {
                    Answer::Failure => {
                        let head = "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                        let _ = stream.write_all(head.as_bytes()).await;
                    }
                    Answer::Endless => {
                        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
                        if stream.write_all(head.as_bytes()).await.is_err() {
                            return;
                        }
                        let mut chunk = b"10000\r\n".to_vec();
                        chunk.extend(std::iter::repeat_n(b' ', 0x10000));
                        chunk.extend_from_slice(b"\r\n");
                        while written.load(Ordering::SeqCst) < 1 << 30 {
                            if stream.write_all(&chunk).await.is_err() {
                                return;
                            }
                            written.fetch_add(0x10000, Ordering::SeqCst);
                        }
                    }
                }
            });
        }
    });
    JwksHost { url, fetches, sent }
}

fn jwks_uri_client(url: &str) -> String {
    format!(
        r#"
[[clients]]
client_id = "signer"
allowed_grant_types = ["client_credentials"]
client_secrets = [{{ jwks_uri = "{url}" }}]
allowed_scopes = ["api1.read"]
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_parallel_junk_assertions_cause_one_jwks_fetch_and_a_failure_is_remembered() {
    let host = jwks_host(Answer::Failure).await;
    let app = Arc::new(TestServer::spawn_with(&jwks_uri_client(&host.url)).await);
    let key = Arc::new(ClientKey::generate("junk"));
    let attempts: Vec<_> = (0..40)
        .map(|i| {
            let (app, key) = (app.clone(), key.clone());
            tokio::spawn(async move {
                let assertion = key.assertion(&claims(&app, &format!("junk-{i}")));
                oauth_error(token_with_assertion(&app, &assertion).await).await
            })
        })
        .collect();
    for attempt in attempts {
        assert_eq!(attempt.await.unwrap(), (400, "invalid_client".into()));
    }
    assert_eq!(host.fetches.load(Ordering::SeqCst), 1, "one fetch for 40 concurrent misses");
    // Within the refetch interval (30 s) the failure stands without a new fetch.
    app.clock.advance(29);
    let response = token_with_assertion(&app, &key.assertion(&claims(&app, "junk-later"))).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_client".into()));
    assert_eq!(host.fetches.load(Ordering::SeqCst), 1, "a failed fetch is not retried within 30 s");
    // After it, one new attempt.
    app.clock.advance(2);
    let response = token_with_assertion(&app, &key.assertion(&claims(&app, "junk-after"))).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_client".into()));
    assert_eq!(host.fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_endless_jwks_body_is_cut_off_at_the_cap_without_buffering_it() {
    let host = jwks_host(Answer::Endless).await;
    let app = TestServer::spawn_with(&jwks_uri_client(&host.url)).await;
    let key = ClientKey::generate("k");
    let started = Instant::now();
    let response = token_with_assertion(&app, &key.assertion(&claims(&app, "endless"))).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_client".into()));
    // The fetch gives up at the cap (256 KiB), long before the 5 s fetch timeout.
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = host.sent.load(Ordering::SeqCst);
    assert!(sent < 32 << 20, "the host could send {sent} bytes: the body was read past the cap");
    assert_eq!(host.fetches.load(Ordering::SeqCst), 1);
}

fn rand_suffix() -> String {
    tessera_core::random::Rng::default().identifier()
}

fn hs256_assertion(claims: &Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(b"guessable");
    jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256), claims, &key).unwrap()
}

/// Issue 14 §2: the client sees a terse `invalid_client`; the log line says why.
#[tokio::test]
async fn a_refused_assertion_is_terse_to_the_client_and_explained_in_the_log() {
    use std::process::{Command, Stdio};
    use tessera_core::Clock as _;
    let dir = crate::support::temp_dir("assertion-logs");
    let key = ClientKey::generate("signer-key");
    let quickstart = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart.toml");
    let config = dir.join("tessera.toml");
    std::fs::write(&config, std::fs::read_to_string(quickstart).unwrap() + &inline_client(&key)).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .env("TESSERA__ISSUER", &base)
        .env("TESSERA__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("TESSERA__STORAGE__URL", format!("sqlite://{}", dir.join("q.db").display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..200 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "server came up");
    let send = |assertion: String| {
        let (http, url) = (http.clone(), format!("{base}/token"));
        async move {
            let form = [
                ("grant_type", "client_credentials"),
                ("scope", "api1.read"),
                ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                ("client_assertion", assertion.as_str()),
            ];
            http.post(url).form(&form).send().await.unwrap()
        }
    };
    let now = tessera_core::clock::SystemClock.now();
    // As Authlib signs them: valid for an hour.
    let claims = |jti: &str, aud: &str, exp: i64| json!({ "iss": "signer", "sub": "signer", "aud": aud, "exp": exp, "iat": now, "jti": jti });
    let good = key.assertion(&claims("hour", &base, now + 3600));
    let accepted = send(good.clone()).await;
    assert_eq!(accepted.status(), 200, "a one-hour assertion: {}", accepted.text().await.unwrap());
    let stranger = ClientKey::generate("signer-key");
    let refused = [
        (good, "assertion jti replayed"),
        (key.assertion(&claims("old", &base, now - 600)), "assertion expired"),
        (key.assertion(&claims("elsewhere", "https://other.example", now + 60)), "aud must be the issuer"),
        (stranger.assertion(&claims("forged", &base, now + 60)), "no registered key verifies the assertion"),
    ];
    for (assertion, _) in &refused {
        let response = send(assertion.clone()).await;
        // RFC 6749 §5.2: 401 is for credentials sent in the Authorization header.
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client");
        let description = body["error_description"].as_str().unwrap_or_default();
        for (_, reason) in &refused {
            assert!(!description.contains(reason), "the client is not told why: {description}");
        }
    }

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap().unwrap();
    let logs = String::from_utf8_lossy(&exit.stderr);
    for (_, reason) in &refused {
        assert!(logs.contains(reason), "the log says {reason:?}:\n{logs}");
    }
    let _ = std::fs::remove_dir_all(dir);
}
