//! Issue 11, the sign-in side: limits that hold under parallel bursts, bounded password
//! checks, no open redirect after sign-in, bounded `/authorize` requests, consent and
//! loopback rules for public clients, interactions bound to their browser, `__Host-`
//! cookies and request logs without query strings.

use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::header::{COOKIE, LOCATION, RETRY_AFTER, SET_COOKIE};

use crate::browser::{Browser, Page, query};
use crate::code_flow::{authorization_url, web_tokens};
use crate::support::{TestServer, temp_dir};

/// Runs every future at once (on this task) and returns their outputs in order.
async fn join_all<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<_> = futures.into_iter().map(|future| Some(Box::pin(future))).collect();
    let mut outputs: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (slot, output) in pending.iter_mut().zip(outputs.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => {
                        *output = Some(value);
                        *slot = None;
                    }
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done { std::task::Poll::Ready(()) } else { std::task::Poll::Pending }
    })
    .await;
    outputs.into_iter().map(Option::unwrap).collect()
}

/// A sign-in form any number of requests can submit at once: the CSRF cookie (as a
/// `Cookie` header) and its token, taken from one visit to `/login`.
async fn login_form(app: &TestServer) -> (String, String) {
    let response = app.http.get(app.url("/login")).send().await.unwrap();
    let cookie = response.headers()[SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_owned();
    let body = response.text().await.unwrap();
    let page = Page { status: 200, location: None, body, headers: reqwest::header::HeaderMap::new() };
    (cookie, page.input("csrf_token").unwrap())
}

/// POSTs `/login` with the form's CSRF pair; returns status, `Location` and whether a
/// session cookie was set.
async fn post_login(
    app: &TestServer,
    (cookie, csrf): &(String, String),
    form: Vec<(&str, &str)>,
    forwarded_for: Option<&str>,
) -> reqwest::Response {
    let mut fields = vec![("csrf_token", csrf.as_str())];
    fields.extend(form);
    let mut request = app.http.post(app.url("/login")).header(COOKIE, cookie).form(&fields);
    if let Some(address) = forwarded_for {
        request = request.header("x-forwarded-for", address);
    }
    request.send().await.unwrap()
}

fn sets_session(response: &reqwest::Response) -> bool {
    response.headers().get_all(SET_COOKIE).iter().any(|value| {
        let pair = value.to_str().unwrap().split(';').next().unwrap();
        pair.split_once('=')
            .is_some_and(|(name, value)| name.ends_with("tessera_session") && !value.is_empty())
    })
}

#[tokio::test]
async fn forty_parallel_wrong_passwords_for_one_account_get_five_evaluations() {
    let app = TestServer::spawn().await;
    let form = login_form(&app).await;
    let wrong = [("username", "alice"), ("password", "wrong")];
    let right = [("username", "alice"), ("password", "alice-password-1")];
    let mut burst: Vec<_> = (0..40).map(|_| post_login(&app, &form, wrong.to_vec(), None)).collect();
    burst.insert(20, post_login(&app, &form, right.to_vec(), None));
    let responses = join_all(burst).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    let count = |status: u16| statuses.iter().filter(|s| **s == status).count();
    // The right password is evaluated only if it reserved one of the five attempts.
    let right_one = &responses[20];
    match right_one.status().as_u16() {
        303 => assert!(sets_session(right_one)),
        429 => assert!(!sets_session(right_one), "no session once the limit is hit"),
        other => panic!("the right password got {other}"),
    }
    assert_eq!(count(401), 5, "exactly five wrong passwords evaluated: {statuses:?}");
    assert_eq!(count(401) + count(429) + count(303), 41, "{statuses:?}");
    // The limit stands: the right password now waits too.
    let after = post_login(&app, &form, right.to_vec(), None).await;
    assert_eq!(after.status(), 429);
    assert!(!sets_session(&after));
    assert!(after.text().await.unwrap().contains("Too many failed attempts"));
}

/// The limit is one count in the store, not one per instance: two instances on one
/// PostgreSQL, 40 wrong passwords split between them at once, five evaluations in all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_parallel_wrong_passwords_across_two_instances_get_five_evaluations() {
    let Ok(base_url) = std::env::var("TESSERA_TEST_POSTGRES") else {
        eprintln!("TESSERA_TEST_POSTGRES is not set: skipping the two-instance throttle run");
        return;
    };
    let schema = tessera_store_sql::testing::fresh_postgres_schema(&base_url).await.unwrap();
    let (a, b) = tokio::join!(
        TestServer::spawn_on_store_as("https://tessera.example", &schema.url, ""),
        TestServer::spawn_on_store_as("https://tessera.example", &schema.url, "")
    );
    let (form_a, form_b) = (login_form(&a).await, login_form(&b).await);
    let wrong = [("username", "alice"), ("password", "wrong")];
    let burst = (0..40).map(|i| {
        let (app, form) = if i % 2 == 0 { (&a, &form_a) } else { (&b, &form_b) };
        post_login(app, form, wrong.to_vec(), None)
    });
    let statuses: Vec<u16> = join_all(burst).await.iter().map(|r| r.status().as_u16()).collect();
    let count = |status: u16| statuses.iter().filter(|s| **s == status).count();
    assert_eq!(count(401), 5, "five evaluations over both instances: {statuses:?}");
    assert_eq!(count(429), 35, "{statuses:?}");
    // Either instance now refuses the right password too.
    let right = [("username", "alice"), ("password", "alice-password-1")];
    for (app, form) in [(&a, &form_a), (&b, &form_b)] {
        let response = post_login(app, form, right.to_vec(), None).await;
        assert_eq!(response.status(), 429);
        assert!(!sets_session(&response));
    }
    a.stop().await;
    b.stop().await;
    schema.drop().await;
}

#[tokio::test]
async fn the_right_password_in_a_burst_after_the_limit_does_not_sign_in() {
    let app = TestServer::spawn().await;
    let form = login_form(&app).await;
    let wrong = [("username", "Alice"), ("password", "wrong")];
    let statuses: Vec<u16> = join_all((0..40).map(|_| post_login(&app, &form, wrong.to_vec(), None)))
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 5, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 35, "{statuses:?}");
    let right = [("username", "alice"), ("password", "alice-password-1")];
    let responses = join_all((0..40).map(|_| post_login(&app, &form, right.to_vec(), None))).await;
    for response in &responses {
        assert_eq!(response.status(), 429);
        assert!(!sets_session(response));
    }
    // Unknown accounts are paused with the same words.
    let unknown = [("username", "nobody"), ("password", "wrong")];
    let statuses: Vec<u16> = join_all((0..40).map(|_| post_login(&app, &form, unknown.to_vec(), None)))
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 5, "{statuses:?}");
}

#[tokio::test]
async fn forty_parallel_failures_from_one_address_get_twenty_evaluations() {
    let app = TestServer::spawn().await;
    let form = login_form(&app).await;
    let names: Vec<String> = (0..40).map(|n| format!("nobody-{n}")).collect();
    let statuses: Vec<u16> = join_all(
        names.iter().map(|name| post_login(&app, &form, vec![("username", name), ("password", "x")], None)),
    )
    .await
    .iter()
    .map(|r| r.status().as_u16())
    .collect();
    let evaluated = statuses.iter().filter(|s| **s == 401).count();
    let busy = statuses.iter().filter(|s| **s == 503).count();
    assert!(evaluated <= 20, "{statuses:?}");
    assert_eq!(evaluated + busy + statuses.iter().filter(|s| **s == 429).count(), 40, "{statuses:?}");
    assert!(statuses.iter().filter(|s| **s == 429).count() >= 20, "{statuses:?}");
}

#[tokio::test]
async fn a_full_queue_of_password_checks_answers_503_with_retry_after() {
    let app = TestServer::spawn_with("[server.proxy]\ntrusted_addresses = [\"127.0.0.0/8\"]").await;
    let form = login_form(&app).await;
    let names: Vec<String> = (0..80).map(|n| format!("nobody-{n}")).collect();
    let addresses: Vec<String> = (0..80).map(|n| format!("198.51.100.{n}")).collect();
    let responses = join_all(names.iter().zip(&addresses).map(|(name, address)| {
        post_login(&app, &form, vec![("username", name), ("password", "x")], Some(address))
    }))
    .await;
    let mut busy = 0;
    for response in responses {
        match response.status().as_u16() {
            401 => {}
            503 => {
                busy += 1;
                assert_eq!(response.headers()[RETRY_AFTER], "5");
                assert!(response.text().await.unwrap().contains("Try again in a few seconds"));
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(busy > 0, "80 parallel checks cannot all be admitted");
    // A refused attempt was not counted: the same address can still sign in.
    let right = [("username", "alice"), ("password", "alice-password-1")];
    let response = post_login(&app, &form, right.to_vec(), Some("198.51.100.1")).await;
    assert_eq!(response.status(), 303);
}

/// Signs in through the login page with `return_to` and returns where it sends the browser.
async fn sign_in_returning_to(app: &TestServer, return_to: &str) -> (Option<String>, String) {
    let mut browser = Browser::new(app);
    let query =
        url::form_urlencoded::Serializer::new(String::new()).append_pair("return_to", return_to).finish();
    let page = browser.get(&format!("/login?{query}")).await;
    let shown = page.input("return_to");
    let csrf = page.input("csrf_token").unwrap();
    let form = [
        ("csrf_token", csrf.as_str()),
        ("username", "alice"),
        ("password", "alice-password-1"),
        ("return_to", return_to),
    ];
    let done = browser.post("/login", &form).await;
    assert_eq!(done.status, 303, "{return_to:?}");
    (shown, done.location.unwrap())
}

#[tokio::test]
async fn after_sign_in_the_browser_never_leaves_the_issuers_origin() {
    let app = TestServer::spawn().await;
    let issuer = url::Url::parse(&app.issuer).unwrap();
    let hostile = [
        "/\t/evil.example/x",
        "/%09/evil.example/x",
        "/\n/evil.example/x",
        "/\r\n/evil.example/x",
        "/ /evil.example/x",
        " //evil.example/x",
        "//evil.example/x",
        "///evil.example/x",
        "/\\evil.example/x",
        "\\\\evil.example/x",
        "/%5c/evil.example/x",
        "/\u{0}/evil.example/x",
        "/\u{3000}/evil.example/x",
        "https://evil.example/x",
        "http:evil.example",
        "evil.example/x",
        "javascript:alert(1)",
        "/%2509/evil.example",
    ];
    for return_to in hostile {
        let (shown, location) = sign_in_returning_to(&app, return_to).await;
        let target = issuer.join(&location).unwrap();
        assert_eq!(target.origin(), issuer.origin(), "{return_to:?} went to {location}");
        assert!(!location.contains('\\') && !location.starts_with("//"), "{location}");
        if return_to != "/%2509/evil.example" {
            assert_eq!(location, "/login", "{return_to:?} refused");
            assert_eq!(shown, None, "{return_to:?} not kept in the form");
        }
    }
    let (shown, location) = sign_in_returning_to(&app, "/device?next=1").await;
    assert_eq!(shown.as_deref(), Some("/device?next=1"));
    assert_eq!(location, format!("{}/device?next=1", app.issuer));
}

/// The redirect to `web`'s callback for `url`: (error, state).
async fn redirected_error(app: &TestServer, url: &str) -> (Option<String>, Option<String>) {
    let page = Browser::new(app).get(url).await;
    assert_eq!(page.status, 303, "{}", page.body);
    let location = url::Url::parse(page.location.as_deref().unwrap()).unwrap();
    assert!(location.as_str().starts_with("https://web.example/cb?"), "{location}");
    (query(&location, "error"), query(&location, "state"))
}

#[tokio::test]
async fn oversized_authorization_requests_are_invalid_request_and_store_nothing() {
    let app = TestServer::spawn().await;
    let big = "x".repeat(2049);
    let url =
        |extra: &[(&str, &str)]| authorization_url(&app, "web", "https://web.example/cb", "openid", extra).0;
    let (error, state) = redirected_error(&app, &url(&[("state", &big)])).await;
    assert_eq!(
        (error.as_deref(), state),
        (Some("invalid_request"), None),
        "an oversized state is not echoed"
    );
    for name in ["nonce", "login_hint"] {
        let (error, state) = redirected_error(&app, &url(&[(name, &big)])).await;
        assert_eq!((error.as_deref(), state.as_deref()), (Some("invalid_request"), Some("st-123")), "{name}");
    }
    let prompts = "login ".repeat(400);
    let (error, _) = redirected_error(&app, &url(&[("prompt", prompts.trim())])).await;
    assert_eq!(error.as_deref(), Some("invalid_request"));
    // Each under the cap, together over the cap for the whole request.
    let part = "y".repeat(1900);
    let (error, _) =
        redirected_error(&app, &url(&[("state", &part), ("nonce", &part), ("login_hint", &part)])).await;
    assert_eq!(error.as_deref(), Some("invalid_request"));
    // At the cap it is accepted.
    let fine = "z".repeat(2048);
    let page = Browser::new(&app).get(&url(&[("state", &fine)])).await;
    assert!(page.location.unwrap().starts_with("/login?interaction="));
    // PAR refuses the same with its JSON error.
    let response = app
        .post_form(
            "/par",
            Some(("web", "web-secret")),
            &[
                ("response_type", "code"),
                ("client_id", "web"),
                ("redirect_uri", "https://web.example/cb"),
                ("scope", "openid"),
                ("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
                ("code_challenge_method", "S256"),
                ("nonce", &big),
            ],
        )
        .await;
    assert_eq!(crate::support::oauth_error(response).await, (400, "invalid_request".to_owned()));
}

#[tokio::test]
async fn one_address_opens_at_most_a_hundred_interactions_in_a_burst() {
    let app = TestServer::spawn().await;
    let urls: Vec<String> =
        (0..120).map(|_| authorization_url(&app, "web", "https://web.example/cb", "openid", &[]).0).collect();
    let pages = join_all(urls.iter().map(|url| app.http.get(url).send())).await;
    let (mut opened, mut refused) = (0, 0);
    for page in pages {
        let page = page.unwrap();
        assert_eq!(page.status(), 303);
        let location = page.headers()[LOCATION].to_str().unwrap().to_owned();
        if location.starts_with("/login?interaction=") {
            opened += 1;
        } else {
            let location = url::Url::parse(&location).unwrap();
            assert!(location.as_str().starts_with("https://web.example/cb?"));
            assert_eq!(query(&location, "error").as_deref(), Some("temporarily_unavailable"));
            assert_eq!(query(&location, "state").as_deref(), Some("st-123"));
            refused += 1;
        }
    }
    assert_eq!((opened, refused), (100, 20));
    // The window passes.
    app.clock.advance(601);
    let page = Browser::new(&app).get(&urls[0]).await;
    assert!(page.location.unwrap().starts_with("/login?interaction="));
}

#[tokio::test]
async fn remembered_consent_does_not_skip_the_page_for_a_public_client() {
    let app = TestServer::spawn().await;
    let mut browser = Browser::new(&app);
    let redirect_uri = "http://127.0.0.1:43123/callback";
    let (url, _) = authorization_url(&app, "native", redirect_uri, "openid", &[]);
    let first = browser.authorize(&url, "alice", "alice-password-1").await;
    assert!(query(&first, "code").is_some());
    // RFC 8252 §8.6: another local process on another port gets no silent approval.
    let (url, _) =
        authorization_url(&app, "native", "http://127.0.0.1:50000/callback", "openid", &[("prompt", "none")]);
    let page = browser.get(&url).await;
    let location = url::Url::parse(page.location.as_deref().unwrap()).unwrap();
    assert!(location.as_str().starts_with("http://127.0.0.1:50000/callback?"));
    assert_eq!(query(&location, "error").as_deref(), Some("consent_required"));
    let (url, _) = authorization_url(&app, "native", redirect_uri, "openid", &[]);
    let page = browser.open(&url).await;
    assert!(page.body.contains("value=\"allow\""), "the consent page again");
    // A confidential client keeps its remembered consent.
    web_tokens(&app, &mut browser, "openid").await;
    let (url, _) = authorization_url(&app, "web", "https://web.example/cb", "openid", &[("prompt", "none")]);
    let page = browser.get(&url).await;
    assert!(page.location.unwrap().contains("code="), "confidential client: silent");
}

#[tokio::test]
async fn only_public_clients_get_the_loopback_port_exception() {
    let app = TestServer::spawn_with(
        r#"
[[clients]]
client_id = "loopweb"
client_name = "Local Web"
allowed_grant_types = ["authorization_code"]
client_secrets = [{ value = "loopweb-secret" }]
redirect_uris = ["http://127.0.0.1/cb", "http://localhost:8080/cb"]
allowed_scopes = ["openid"]

[[clients]]
client_id = "localnative"
client_name = "Local Native"
allowed_grant_types = ["authorization_code"]
require_client_secret = false
redirect_uris = ["http://localhost/callback", "http://[::1]/callback"]
allowed_scopes = ["openid"]
"#,
    )
    .await;
    let outcome = |client: &str, redirect_uri: &str| {
        let url = authorization_url(&app, client, redirect_uri, "openid", &[]).0;
        let app = &app;
        async move {
            let page = Browser::new(app).get(&url).await;
            (page.status, page.location)
        }
    };
    for (client, redirect_uri) in [
        ("loopweb", "http://127.0.0.1:5000/cb"),
        ("loopweb", "http://localhost:8081/cb"),
        ("loopweb", "http://localhost/cb"),
        ("localnative", "http://127.0.0.1:49152/callback"),
        ("localnative", "https://localhost:49152/callback"),
        ("localnative", "http://localhost:49152/other"),
    ] {
        assert_eq!(outcome(client, redirect_uri).await, (400, None), "{client} {redirect_uri}");
    }
    for (client, redirect_uri) in [
        ("loopweb", "http://127.0.0.1/cb"),
        ("loopweb", "http://localhost:8080/cb"),
        ("localnative", "http://localhost:49152/callback"),
        ("localnative", "http://localhost/callback"),
        ("localnative", "http://[::1]:6000/callback"),
    ] {
        let (status, location) = outcome(client, redirect_uri).await;
        assert_eq!(status, 303, "{client} {redirect_uri}");
        assert!(location.unwrap().starts_with("/login?interaction="), "{client} {redirect_uri}");
    }
}

#[tokio::test]
async fn another_browser_cannot_sign_in_into_someone_elses_interaction() {
    let app = TestServer::spawn().await;
    let mut victim = Browser::new(&app);
    web_tokens(&app, &mut victim, "openid").await;
    let (url, _) = authorization_url(&app, "web", "https://web.example/cb", "openid", &[("prompt", "login")]);
    let login = victim.open(&url).await;
    let interaction = login.input("interaction").unwrap();
    // Another browser (its own cookies) with the victim's interaction id.
    let mut attacker = Browser::new(&app);
    let page = attacker.get(&format!("/login?interaction={interaction}")).await;
    assert_eq!(page.status, 403);
    let own = attacker.get("/login").await;
    let csrf = own.input("csrf_token").unwrap();
    let form = [
        ("csrf_token", csrf.as_str()),
        ("interaction", interaction.as_str()),
        ("username", "bob"),
        ("password", "bob-password-1"),
    ];
    let page = attacker.post("/login", &form).await;
    assert_eq!(page.status, 403, "refused before any password is checked");
    assert_eq!(attacker.get(&format!("/authorize/resume?interaction={interaction}")).await.status, 403);
    assert_eq!(attacker.get(&format!("/consent?interaction={interaction}")).await.status, 403);
    // The victim's interaction still asks the victim to sign in.
    let page = victim.open(&format!("/authorize/resume?interaction={interaction}")).await;
    assert!(page.body.contains("name=\"password\""), "prompt=login not satisfied by another browser");
    let done = victim.sign_in(&page, "alice", "alice-password-1").await;
    assert!(done.location.unwrap().contains("code="));
}

#[tokio::test]
async fn a_re_authentication_counts_only_for_the_subject_it_produced() {
    let app = TestServer::spawn().await;
    let mut browser = Browser::new(&app);
    web_tokens(&app, &mut browser, "openid").await;
    let (url, _) = authorization_url(&app, "web", "https://web.example/cb", "openid", &[("prompt", "login")]);
    let login = browser.open(&url).await;
    let interaction = login.input("interaction").unwrap();
    // bob signs in for this interaction (and is asked to consent)...
    let consent = browser.sign_in(&login, "bob", "bob-password-1").await;
    assert!(consent.body.contains("value=\"allow\""));
    // ...then alice signs in in the same browser, outside the interaction.
    let csrf = login.input("csrf_token").unwrap();
    let form = [("csrf_token", csrf.as_str()), ("username", "alice"), ("password", "alice-password-1")];
    assert_eq!(browser.post("/login", &form).await.status, 303);
    // bob's re-authentication does not answer prompt=login for alice's session.
    let page = browser.open(&format!("/authorize/resume?interaction={interaction}")).await;
    assert!(page.body.contains("name=\"password\""), "alice must sign in again: {}", page.status);
}

#[tokio::test]
async fn on_an_https_issuer_cookies_carry_the_host_prefix() {
    let app = TestServer::spawn_with_env("", &[("TESSERA__ISSUER", "https://login.example")]).await;
    let mut browser = Browser::new(&app);
    let (url, _) = authorization_url(&app, "web", "https://web.example/cb", "openid", &[]);
    let mut set_cookies = Vec::new();
    let mut collect = |page: &Page| {
        for value in page.headers.get_all(SET_COOKIE) {
            set_cookies.push(value.to_str().unwrap().to_owned());
        }
    };
    let started = browser.get(&url).await;
    collect(&started);
    let login = browser.get(started.location.as_deref().unwrap()).await;
    collect(&login);
    let csrf = login.input("csrf_token").unwrap();
    let interaction = login.input("interaction").unwrap();
    let form = [
        ("csrf_token", csrf.as_str()),
        ("interaction", interaction.as_str()),
        ("username", "alice"),
        ("password", "alice-password-1"),
    ];
    let signed_in = browser.post("/login", &form).await;
    assert_eq!(signed_in.status, 303);
    collect(&signed_in);
    let consent = browser.follow(signed_in).await;
    let done = browser.consent(&consent, "allow").await;
    assert!(done.location.unwrap().starts_with("https://web.example/cb?code="), "the flow completes");
    let names: Vec<&str> = set_cookies.iter().map(|c| c.split('=').next().unwrap()).collect();
    for name in ["__Host-tessera_browser", "__Host-tessera_csrf", "__Host-tessera_session"] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    for cookie in &set_cookies {
        assert!(cookie.starts_with("__Host-"), "{cookie}");
        assert!(cookie.contains("; Path=/;") && cookie.contains("; Secure"), "{cookie}");
        assert!(!cookie.to_ascii_lowercase().contains("domain="), "{cookie}");
    }
}

#[tokio::test]
async fn request_logs_never_carry_query_strings_even_at_trace_level() {
    let dir = temp_dir("logs");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let quickstart = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart.toml");
    let child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["serve", "--config"])
        .arg(quickstart)
        .env("RUST_LOG", "trace")
        .env("TESSERA__ISSUER", format!("http://127.0.0.1:{port}"))
        .env("TESSERA__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("TESSERA__STORAGE__URL", format!("sqlite://{}", dir.join("q.db").display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..200 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "server came up");
    let secrets = ["SECRET-HINT-7f3a", "SECRET-USERCODE-9b2c", "SECRET-LOGINHINT-4d1e", "SECRET-STATE-0a9f"];
    for path in [
        format!("/logout?id_token_hint={}", secrets[0]),
        format!("/device?user_code={}", secrets[1]),
        format!(
            "/authorize?response_type=code&client_id=web-app&redirect_uri=https://webapp.example.com/signin-oidc\
             &scope=openid&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256\
             &login_hint={}&state={}",
            secrets[2], secrets[3]
        ),
    ] {
        let response = http.get(format!("{base}{path}")).send().await.unwrap();
        assert!(response.status().as_u16() < 500, "{path}");
    }
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap().unwrap();
    let logs = strip_ansi(&String::from_utf8_lossy(&exit.stderr));
    assert!(logs.contains("path=/logout") && logs.contains("path=/device"), "request spans logged:\n{logs}");
    for secret in secrets {
        assert!(!logs.contains(secret), "{secret} in the logs:\n{logs}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// `text` without ANSI colour sequences (`ESC [ … m`).
fn strip_ansi(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}
