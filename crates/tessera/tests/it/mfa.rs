//! Second factors end to end: authenticator apps set up on `/account` and from the
//! command line, the second sign-in step, replayed and guessed codes, recovery codes,
//! step-up through `acr_values`, `require_mfa`, re-verification for account changes,
//! and `amr`/`acr` in ID tokens. The server's clock is the test's: codes are computed
//! for its time.

use serde_json::Value;

use crate::browser::{Browser, Page, query};
use crate::code_flow::{authorization_url, redeem};
use crate::support::{TestServer, postgres_url, temp_dir};

/// The code an authenticator app holding `uri` shows at `now` (RFC 6238).
fn code_at(uri: &str, now: i64) -> String {
    let totp = totp_rs::Totp::from_url(uri).expect("an otpauth URI");
    totp.generate(u64::try_from(now).unwrap()).to_string()
}

fn now(app: &TestServer) -> i64 {
    tessera_core::Clock::now(app.clock.as_ref())
}

fn id_token_claims(tokens: &Value) -> Value {
    use base64::Engine as _;
    let payload = tokens["id_token"].as_str().expect("an ID token").split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap())
        .unwrap()
}

/// `tessera users totp USERNAME`: the printed otpauth URI.
fn enrol_on_the_command_line(app: &TestServer, username: &str) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["users", "totp", username, "--config"])
        .arg(&app.config_path)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let uri = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    uri
}

fn users_mfa(app: &TestServer, args: &[&str]) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["users", "mfa"])
        .args(args)
        .arg("--config")
        .arg(&app.config_path)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// Submits `code` on the second-step page `page` shows; follows redirects.
async fn enter_code(browser: &mut Browser<'_>, page: &Page, code: &str) -> Page {
    let csrf = page.input("csrf_token").expect("the second step has a CSRF token");
    let response = browser.post("/login/second-factor", &[("csrf_token", &csrf), ("code", code)]).await;
    browser.follow(response).await
}

/// From a page on the way to the client, through consent, to the code.
async fn to_the_client(browser: &mut Browser<'_>, mut page: Page) -> url::Url {
    if page.body.contains("value=\"allow\"") {
        page = browser.consent(&page, "allow").await;
    }
    let location = page.location.unwrap_or_else(|| panic!("no redirect to the client:\n{}", page.body));
    url::Url::parse(&location).unwrap()
}

async fn tokens_for(app: &TestServer, redirect: &url::Url, verifier: &str) -> Value {
    let code = query(redirect, "code").unwrap_or_else(|| panic!("a code: {redirect}"));
    let response = redeem(app, &code, verifier, "https://web.example/cb").await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn is_second_step(page: &Page) -> bool {
    page.body.contains("<label for=\"code\">Code</label>")
        && page.body.contains("autocomplete=\"one-time-code\"")
}

#[tokio::test]
async fn an_app_set_up_on_the_account_page_is_asked_for_and_its_code_is_accepted_once() {
    let app = TestServer::spawn().await;
    let mut browser = Browser::new(&app);
    // /account asks for a sign-in, then shows the account.
    let login = browser.open("/account").await;
    assert!(login.body.contains("name=\"password\""), "{}", login.body);
    let account = browser.sign_in(&login, "alice", "alice-password-1").await;
    assert!(account.body.contains("Your account") && account.body.contains("Set up an authenticator app"));

    // Set up: the page shows a QR code, the otpauth URI and asks for a code.
    let set_up = browser.get("/account/totp").await;
    assert_eq!(set_up.status, 200);
    assert!(set_up.body.contains("<svg"), "a QR code");
    assert!(is_second_step(&set_up), "a Code field");
    let uri = between(&set_up.body, "<p class=\"uri\"><code>", "</code>").replace("&amp;", "&");
    let csrf = set_up.input("csrf_token").unwrap();
    let wrong = browser.post("/account/totp", &[("csrf_token", &csrf), ("code", "000000")]).await;
    assert_eq!(wrong.status, 401, "a wrong code does not confirm");
    let confirm_code = code_at(&uri, now(&app));
    let done = browser.post("/account/totp", &[("csrf_token", &csrf), ("code", &confirm_code)]).await;
    let done = browser.follow(done).await;
    assert!(done.body.contains("Your authenticator app is set up"), "{}", done.body);

    // A fresh browser: the password leads to the second step.
    let mut other = Browser::new(&app);
    let (url, verifier) = authorization_url(&app, "web", "https://web.example/cb", "openid", &[]);
    let login = other.open(&url).await;
    let second = other.sign_in(&login, "alice", "alice-password-1").await;
    assert!(is_second_step(&second), "{}", second.body);
    // The code that confirmed the set-up counts as used.
    let replayed = enter_code(&mut other, &second, &confirm_code).await;
    assert_eq!(replayed.status, 401, "the set-up code is used");
    assert!(replayed.body.contains("That code is not right"));
    app.clock.advance(30);
    let code = code_at(&uri, now(&app));
    let onward = enter_code(&mut other, &replayed, &code).await;
    let redirect = to_the_client(&mut other, onward).await;
    let claims = id_token_claims(&tokens_for(&app, &redirect, &verifier).await);
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    assert_eq!(claims["acr"], "mfa");

    // The same code in a third browser within its window: refused (RFC 6238 §5.2).
    let mut third = Browser::new(&app);
    let (url, _) = authorization_url(&app, "web", "https://web.example/cb", "openid", &[]);
    let login = third.open(&url).await;
    let second = third.sign_in(&login, "alice", "alice-password-1").await;
    let replayed = enter_code(&mut third, &second, &code).await;
    assert_eq!(replayed.status, 401, "a code is accepted once");
    app.stop().await;
}

fn between(text: &str, start: &str, end: &str) -> String {
    let from = text.find(start).unwrap_or_else(|| panic!("no {start:?} in:\n{text}")) + start.len();
    let to = text[from..].find(end).unwrap() + from;
    text[from..to].to_owned()
}

#[tokio::test]
async fn the_command_line_sets_up_lists_and_resets_factors_for_a_running_server() {
    let app = TestServer::spawn().await;
    let uri = enrol_on_the_command_line(&app, "bob");
    assert!(users_mfa(&app, &["bob"]).contains("authenticator app\tset up"));
    let mut browser = Browser::new(&app);
    let (url, verifier) = authorization_url(&app, "web", "https://web.example/cb", "openid", &[]);
    let login = browser.open(&url).await;
    let second = browser.sign_in(&login, "bob", "bob-password-1").await;
    assert!(is_second_step(&second), "the running server sees the new factor at once");
    let onward = enter_code(&mut browser, &second, &code_at(&uri, now(&app))).await;
    let redirect = to_the_client(&mut browser, onward).await;
    assert_eq!(id_token_claims(&tokens_for(&app, &redirect, &verifier).await)["acr"], "mfa");

    // A lost phone: --reset, and the password alone signs in again.
    assert!(users_mfa(&app, &["bob", "--reset"]).contains("second factors removed"));
    assert!(users_mfa(&app, &["bob"]).contains("authenticator app\tnone"));
    let mut browser = Browser::new(&app);
    let (url, verifier) = authorization_url(&app, "web", "https://web.example/cb", "openid", &[]);
    let redirect = browser.authorize(&url, "bob", "bob-password-1").await;
    let claims = id_token_claims(&tokens_for(&app, &redirect, &verifier).await);
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
    assert_eq!(claims["acr"], "pwd");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forty_parallel_wrong_codes_get_at_most_five_evaluations() {
    let app = TestServer::spawn().await;
    let uri = enrol_on_the_command_line(&app, "alice");
    let mut browser = Browser::new(&app);
    let login = browser.open("/login").await;
    let second = browser.sign_in(&login, "alice", "alice-password-1").await;
    assert!(is_second_step(&second));
    let csrf = second.input("csrf_token").unwrap();
    let cookies = browser.cookie_header();
    let right = code_at(&uri, now(&app));
    let wrong = format!("{:06}", (right.parse::<u32>().unwrap() + 1) % 1_000_000);
    let racers: Vec<_> = (0..40)
        .map(|_| {
            let (http, url, cookies, csrf, wrong) = (
                app.http.clone(),
                app.url("/login/second-factor"),
                cookies.clone(),
                csrf.clone(),
                wrong.clone(),
            );
            tokio::spawn(async move {
                let response = http
                    .post(url)
                    .header(reqwest::header::COOKIE, cookies)
                    .form(&[("csrf_token", csrf.as_str()), ("code", wrong.as_str())])
                    .send()
                    .await
                    .unwrap();
                response.status().as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for racer in racers {
        statuses.push(racer.await.unwrap());
    }
    let evaluated = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(evaluated + throttled, 40, "{statuses:?}");
    assert!(evaluated <= 5, "{evaluated} wrong codes were checked: {statuses:?}");
    // The right code now is refused too, until the window passes.
    let refused = enter_code(&mut browser, &second, &right).await;
    assert_eq!(refused.status, 429);
    assert!(refused.body.contains("Too many failed attempts"));
    // The password is paused for the account as well: one limit.
    let mut other = Browser::new(&app);
    let login = other.open("/login").await;
    let paused = other.sign_in(&login, "alice", "alice-password-1").await;
    assert_eq!(paused.status, 429);
    app.stop().await;
}

#[tokio::test]
async fn a_recovery_code_signs_in_once() {
    let app = TestServer::spawn().await;
    let mut browser = Browser::new(&app);
    let login = browser.open("/account").await;
    let account = browser.sign_in(&login, "alice", "alice-password-1").await;
    let csrf = account.input("csrf_token").unwrap();
    let codes_page = browser.post("/account/recovery-codes", &[("csrf_token", &csrf)]).await;
    assert_eq!(codes_page.status, 200);
    let codes: Vec<String> = codes_page
        .body
        .split("<li><code>")
        .skip(1)
        .map(|item| item.split("</code>").next().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10, "{}", codes_page.body);
    assert!(codes.iter().all(|code| code.len() == 19), "{codes:?}");
    let set_up = browser.get("/account/totp").await;
    let uri = between(&set_up.body, "<p class=\"uri\"><code>", "</code>").replace("&amp;", "&");
    let csrf = set_up.input("csrf_token").unwrap();
    let confirmed =
        browser.post("/account/totp", &[("csrf_token", &csrf), ("code", &code_at(&uri, now(&app)))]).await;
    assert_eq!(confirmed.status, 303);

    for attempt in 0..2 {
        let mut other = Browser::new(&app);
        let (url, verifier) = authorization_url(&app, "web", "https://web.example/cb", "openid", &[]);
        let login = other.open(&url).await;
        let second = other.sign_in(&login, "alice", "alice-password-1").await;
        // Typed in capitals and without dashes: the same code.
        let typed = codes[0].replace('-', " ").to_uppercase();
        let onward = enter_code(&mut other, &second, &typed).await;
        if attempt == 0 {
            let redirect = to_the_client(&mut other, onward).await;
            let claims = id_token_claims(&tokens_for(&app, &redirect, &verifier).await);
            assert_eq!(claims["acr"], "mfa");
            assert_eq!(claims["amr"], serde_json::json!(["pwd", "mfa"]), "a recovery code: pwd and mfa");
        } else {
            assert_eq!(onward.status, 401, "a recovery code is used once");
        }
    }
    let account = browser.get("/account").await;
    assert!(account.body.contains("9 unused recovery codes"), "{}", account.body);
    app.stop().await;
}

#[tokio::test]
async fn acr_values_steps_a_password_session_up_without_a_new_password() {
    let app = TestServer::spawn().await;
    let mut browser = Browser::new(&app);
    // Signed in with a password before the app was set up: the session is at `pwd`.
    let (url, verifier) = authorization_url(&app, "web", "https://web.example/cb", "openid", &[]);
    let redirect = browser.authorize(&url, "alice", "alice-password-1").await;
    assert_eq!(id_token_claims(&tokens_for(&app, &redirect, &verifier).await)["acr"], "pwd");
    let uri = enrol_on_the_command_line(&app, "alice");

    // phr needs a passkey alice does not have: unmet, at the client.
    let (url, _) =
        authorization_url(&app, "web", "https://web.example/cb", "openid", &[("acr_values", "phr")]);
    let unmet = browser.get(&url).await;
    let location = url::Url::parse(unmet.location.as_deref().expect("back to the client")).unwrap();
    assert_eq!(query(&location, "error").as_deref(), Some("unmet_authentication_requirements"));

    // prompt=none cannot step up.
    let (url, _) = authorization_url(
        &app,
        "web",
        "https://web.example/cb",
        "openid",
        &[("acr_values", "mfa"), ("prompt", "none")],
    );
    let page = browser.get(&url).await;
    let location = url::Url::parse(page.location.as_deref().expect("back to the client")).unwrap();
    assert_eq!(query(&location, "error").as_deref(), Some("interaction_required"));

    // acr_values=mfa: only the code is asked, no password.
    let (url, verifier) =
        authorization_url(&app, "web", "https://web.example/cb", "openid", &[("acr_values", "mfa")]);
    let second = browser.open(&url).await;
    assert!(is_second_step(&second), "{}", second.body);
    assert!(!second.body.contains("name=\"password\""));
    let onward = enter_code(&mut browser, &second, &code_at(&uri, now(&app))).await;
    let redirect = to_the_client(&mut browser, onward).await;
    let claims = id_token_claims(&tokens_for(&app, &redirect, &verifier).await);
    assert_eq!(claims["acr"], "mfa");
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]));

    // The session remembers: the next request for mfa goes straight through, and one
    // without acr_values says the strongest level reached. The `claims` parameter's
    // essential acr asks the same.
    let claims_param = r#"{"id_token":{"acr":{"essential":true,"values":["mfa"]}}}"#;
    for extra in [vec![("acr_values", "mfa")], vec![], vec![("claims", claims_param)]] {
        let (url, verifier) = authorization_url(&app, "web", "https://web.example/cb", "openid", &extra);
        let page = browser.open(&url).await;
        let redirect = to_the_client(&mut browser, page).await;
        assert_eq!(id_token_claims(&tokens_for(&app, &redirect, &verifier).await)["acr"], "mfa");
    }
    app.stop().await;
}

const MFA_CLIENT: &str = r#"
[[clients]]
client_id = "bank"
client_name = "Bank"
allowed_grant_types = ["authorization_code"]
client_secrets = [{ value = "bank-secret" }]
redirect_uris = ["https://web.example/cb"]
allowed_scopes = ["openid"]
require_consent = false
require_mfa = true
"#;

#[tokio::test]
async fn a_client_that_requires_mfa_takes_a_user_without_one_to_set_it_up_and_on() {
    let app = TestServer::spawn_with(MFA_CLIENT).await;
    let mut browser = Browser::new(&app);
    let (url, verifier) = authorization_url(&app, "bank", "https://web.example/cb", "openid", &[]);
    let login = browser.open(&url).await;
    let set_up = browser.sign_in(&login, "alice", "alice-password-1").await;
    assert!(set_up.body.contains("Set up an authenticator app"), "{}", set_up.body);
    assert!(set_up.body.contains("<svg") && is_second_step(&set_up));
    let uri = between(&set_up.body, "<p class=\"uri\"><code>", "</code>").replace("&amp;", "&");
    let csrf = set_up.input("csrf_token").unwrap();
    let onward =
        browser.post("/login/set-up", &[("csrf_token", &csrf), ("code", &code_at(&uri, now(&app)))]).await;
    let page = browser.follow(onward).await;
    let redirect = to_the_client(&mut browser, page).await;
    let code = query(&redirect, "code").expect("a code after the set-up");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("code_verifier", verifier.as_str()),
        ("redirect_uri", "https://web.example/cb"),
    ];
    let tokens: Value =
        app.post_form("/token", Some(("bank", "bank-secret")), &form).await.json().await.unwrap();
    assert_eq!(id_token_claims(&tokens)["acr"], "mfa");

    // Other clients are not affected: bob signs in to `web` with a password alone.
    let mut other = Browser::new(&app);
    let (url, verifier) = authorization_url(&app, "web", "https://web.example/cb", "openid", &[]);
    let redirect = other.authorize(&url, "bob", "bob-password-1").await;
    assert_eq!(id_token_claims(&tokens_for(&app, &redirect, &verifier).await)["acr"], "pwd");
    app.stop().await;
}

#[tokio::test]
async fn with_require_mfa_on_the_server_every_sign_in_sets_up_a_factor_first() {
    let app = TestServer::spawn_with("[sign_in]\nrequire_mfa = true\n").await;
    let mut browser = Browser::new(&app);
    let (url, verifier) = authorization_url(&app, "web", "https://web.example/cb", "openid", &[]);
    let login = browser.open(&url).await;
    let set_up = browser.sign_in(&login, "bob", "bob-password-1").await;
    assert!(set_up.body.contains("This sign-in needs a second factor"), "{}", set_up.body);
    // Without the set-up there is no session: the account page still asks to sign in.
    let mut elsewhere = Browser::new(&app);
    let login = elsewhere.open("/account").await;
    let again = elsewhere.sign_in(&login, "bob", "bob-password-1").await;
    assert!(!again.body.contains("Your account"), "no session before a factor is set up");
    let uri = between(&set_up.body, "<p class=\"uri\"><code>", "</code>").replace("&amp;", "&");
    let csrf = set_up.input("csrf_token").unwrap();
    let onward =
        browser.post("/login/set-up", &[("csrf_token", &csrf), ("code", &code_at(&uri, now(&app)))]).await;
    let page = browser.follow(onward).await;
    let redirect = to_the_client(&mut browser, page).await;
    assert_eq!(id_token_claims(&tokens_for(&app, &redirect, &verifier).await)["acr"], "mfa");
    app.stop().await;
}

#[tokio::test]
async fn account_changes_after_five_minutes_ask_again_and_a_new_password_ends_other_sessions() {
    let app = TestServer::spawn().await;
    let add = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["users", "add", "carol", "--subject", "carol-sub", "--password-stdin", "--config"])
        .arg(&app.config_path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        add.stdin.as_ref().unwrap().write_all(b"carol-password-1\n").unwrap();
    }
    assert!(add.wait_with_output().unwrap().status.success());

    let mut laptop = Browser::new(&app);
    let mut phone = Browser::new(&app);
    for browser in [&mut laptop, &mut phone] {
        let login = browser.open("/account").await;
        let account = browser.sign_in(&login, "carol", "carol-password-1").await;
        assert!(account.body.contains("Your account"));
    }
    let account = laptop.get("/account").await;
    assert_eq!(account.body.matches("action=\"/account/sessions/end\"").count(), 2, "two sessions listed");

    app.clock.advance(6 * 60);
    let account = laptop.get("/account").await;
    let csrf = account.input("csrf_token").unwrap();
    let change = [
        ("csrf_token", csrf.as_str()),
        ("new_password", "carol-password-2"),
        ("confirm_password", "carol-password-2"),
    ];
    let asked = laptop.post("/account/password", &change).await;
    assert_eq!(
        asked.location.as_deref(),
        Some("/account/verify"),
        "a sign-in of six minutes ago is asked again"
    );
    let verify = laptop.follow(asked).await;
    let wrong = laptop
        .post(
            "/account/verify",
            &[("csrf_token", &verify.input("csrf_token").unwrap()), ("password", "nope-nope-nope")],
        )
        .await;
    assert_eq!(wrong.status, 401);
    let verified =
        laptop.post("/account/verify", &[("csrf_token", &csrf), ("password", "carol-password-1")]).await;
    assert_eq!(verified.status, 303);
    let changed = laptop.post("/account/password", &change).await;
    let changed = laptop.follow(changed).await;
    assert!(changed.body.contains("Your password was changed"), "{}", changed.body);

    // The phone's session ended; the new password signs in, the old one does not.
    let phone_account = phone.get("/account").await;
    assert_eq!(phone_account.status, 303, "the other session was signed out");
    let mut fresh = Browser::new(&app);
    let login = fresh.open("/account").await;
    assert_eq!(fresh.sign_in(&login, "carol", "carol-password-1").await.status, 401);
    let login = fresh.open("/account").await;
    assert!(fresh.sign_in(&login, "carol", "carol-password-2").await.body.contains("Your account"));

    // A user of the configuration file keeps the file's password.
    let mut alice = Browser::new(&app);
    let login = alice.open("/account").await;
    let account = alice.sign_in(&login, "alice", "alice-password-1").await;
    let csrf = account.input("csrf_token").unwrap();
    let refused = alice
        .post(
            "/account/password",
            &[
                ("csrf_token", &csrf),
                ("new_password", "alice-password-2"),
                ("confirm_password", "alice-password-2"),
            ],
        )
        .await;
    assert_eq!(refused.status, 400);
    assert!(refused.body.contains("configuration"));

    // Without the form's CSRF token nothing changes.
    let forged = alice.post("/account/recovery-codes", &[("csrf_token", "forged")]).await;
    assert_eq!(forged.status, 403);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_set_up_on_one_instance_is_asked_for_on_another() {
    let Some(base_url) = postgres_url() else { return };
    let schema = tessera_store_sql::testing::fresh_postgres_schema(&base_url).await.unwrap();
    const ISSUER: &str = "https://tessera.example";
    let (a, b) = tokio::join!(
        TestServer::spawn_instance(ISSUER, &schema.url, temp_dir("mfa-pg-a")),
        TestServer::spawn_instance(ISSUER, &schema.url, temp_dir("mfa-pg-b"))
    );
    // Set up through instance A's account page...
    let mut browser = Browser::new(&a);
    let login = browser.open("/account").await;
    browser.sign_in(&login, "alice", "alice-password-1").await;
    let set_up = browser.get("/account/totp").await;
    let uri = between(&set_up.body, "<p class=\"uri\"><code>", "</code>").replace("&amp;", "&");
    let csrf = set_up.input("csrf_token").unwrap();
    let confirmed =
        browser.post("/account/totp", &[("csrf_token", &csrf), ("code", &code_at(&uri, now(&a)))]).await;
    assert_eq!(confirmed.status, 303);
    // ...and B asks for it at the next sign-in, and accepts its code.
    b.clock.advance(30);
    let mut other = Browser::new(&b);
    let (url, verifier) = authorization_url(&b, "web", "https://web.example/cb", "openid", &[]);
    let login = other.open(&url).await;
    let second = other.sign_in(&login, "alice", "alice-password-1").await;
    assert!(is_second_step(&second), "{}", second.body);
    let onward = enter_code(&mut other, &second, &code_at(&uri, now(&b))).await;
    let redirect = to_the_client(&mut other, onward).await;
    let code = query(&redirect, "code").unwrap();
    let tokens: Value = redeem(&b, &code, &verifier, "https://web.example/cb").await.json().await.unwrap();
    assert_eq!(id_token_claims(&tokens)["acr"], "mfa");
    a.stop().await;
    b.stop().await;
    schema.drop().await;
}

const TELLER: &str = r#"
[[clients]]
client_id = "teller"
client_name = "Bank Teller"
allowed_grant_types = ["urn:openid:params:grant-type:ciba"]
client_secrets = [{ value = "teller-secret" }]
allowed_scopes = ["openid"]
"#;

#[tokio::test]
async fn a_ciba_request_asking_for_mfa_steps_the_approving_session_up_on_approvals() {
    let app = TestServer::spawn_with(TELLER).await;
    // Alice is signed in with a password, then gets an app from the operator.
    let mut browser = Browser::new(&app);
    let login = browser.open("/approvals").await;
    let approvals = browser.sign_in(&login, "alice", "alice-password-1").await;
    assert!(approvals.body.contains("<h1>Approvals</h1>"));
    let uri = enrol_on_the_command_line(&app, "alice");

    let unsupported = app
        .post_form(
            "/bc-authorize",
            Some(("teller", "teller-secret")),
            &[("scope", "openid"), ("login_hint", "alice"), ("acr_values", "gold")],
        )
        .await;
    assert_eq!(unsupported.status(), 400);
    let asked = app
        .post_form(
            "/bc-authorize",
            Some(("teller", "teller-secret")),
            &[
                ("scope", "openid"),
                ("login_hint", "alice"),
                ("binding_message", "Withdraw 100 EUR"),
                ("acr_values", "mfa"),
            ],
        )
        .await;
    assert_eq!(asked.status(), 200);
    let auth_req_id = asked.json::<Value>().await.unwrap()["auth_req_id"].as_str().unwrap().to_owned();

    // Approving with the password session asks for the code first...
    let page = browser.get("/approvals").await;
    let form = [
        ("csrf_token", page.input("csrf_token").unwrap()),
        ("request", page.input("request").expect("the pending request")),
        ("decision", "approve".to_owned()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let stepped = browser.post("/approvals", &form).await;
    assert_eq!(stepped.location.as_deref(), Some("/login/second-factor"));
    let poll = [("grant_type", "urn:openid:params:grant-type:ciba"), ("auth_req_id", auth_req_id.as_str())];
    let pending: Value =
        app.post_form("/token", Some(("teller", "teller-secret")), &poll).await.json().await.unwrap();
    assert_eq!(pending["error"], "authorization_pending", "not approved yet");
    let second = browser.follow(stepped).await;
    assert!(is_second_step(&second));
    let back = enter_code(&mut browser, &second, &code_at(&uri, now(&app))).await;
    assert!(back.body.contains("<h1>Approvals</h1>"), "back on the approvals page: {}", back.body);
    // ...then the approval goes through, and the ID token says mfa.
    let approved = browser.post("/approvals", &form).await;
    assert_eq!(approved.status, 303);
    app.clock.advance(5);
    let tokens: Value =
        app.post_form("/token", Some(("teller", "teller-secret")), &poll).await.json().await.unwrap();
    let claims = id_token_claims(&tokens);
    assert_eq!(claims["acr"], "mfa", "{tokens}");
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    app.stop().await;
}

#[tokio::test]
async fn prompt_login_asks_for_every_factor_again() {
    let app = TestServer::spawn().await;
    let uri = enrol_on_the_command_line(&app, "alice");
    let mut browser = Browser::new(&app);
    let (url, _) = authorization_url(&app, "web", "https://web.example/cb", "openid", &[]);
    let login = browser.open(&url).await;
    let second = browser.sign_in(&login, "alice", "alice-password-1").await;
    let onward = enter_code(&mut browser, &second, &code_at(&uri, now(&app))).await;
    to_the_client(&mut browser, onward).await;
    app.clock.advance(30);
    let (url, verifier) =
        authorization_url(&app, "web", "https://web.example/cb", "openid", &[("prompt", "login")]);
    let login = browser.open(&url).await;
    assert!(login.body.contains("name=\"password\""), "prompt=login asks for the password");
    let second = browser.sign_in(&login, "alice", "alice-password-1").await;
    assert!(is_second_step(&second), "and for the second factor");
    let onward = enter_code(&mut browser, &second, &code_at(&uri, now(&app))).await;
    let redirect = to_the_client(&mut browser, onward).await;
    let claims = id_token_claims(&tokens_for(&app, &redirect, &verifier).await);
    assert_eq!(claims["acr"], "mfa");
    assert_eq!(claims["auth_time"], now(&app), "a new sign-in");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn passkey_ceremonies_refuse_bad_answers_and_anonymous_callers_cannot_pile_them_up() {
    let app = TestServer::spawn_with_env("", &[("TESSERA__ISSUER", "http://localhost:{port}")]).await;
    let mut browser = Browser::new(&app);
    let login = browser.open("/login").await;
    assert!(login.body.contains("Sign in with a passkey"), "passkeys are on for a host name");
    let csrf = login.input("csrf_token").unwrap();
    let cookies = browser.cookie_header();
    let options = |csrf: String, cookies: String| {
        let (http, url) = (app.http.clone(), app.url("/passkeys/sign-in/options"));
        async move {
            http.post(url)
                .header(reqwest::header::COOKIE, cookies)
                .form(&[("csrf_token", csrf.as_str())])
                .send()
                .await
                .unwrap()
        }
    };
    // Options: a challenge for a discoverable credential, with user verification.
    let first = options(csrf.clone(), cookies.clone()).await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["cache-control"], "no-store");
    let started: Value = first.json().await.unwrap();
    assert_eq!(started["options"]["publicKey"]["rpId"], "localhost");
    assert_eq!(started["options"]["publicKey"]["userVerification"], "required");
    let ceremony = started["ceremony"].as_str().unwrap().to_owned();

    // Without the page's CSRF token: refused, nothing started.
    let forged = options("forged".into(), cookies.clone()).await;
    assert_eq!(forged.status(), 400);
    assert_eq!(forged.json::<Value>().await.unwrap()["error"], "access_denied");
    // A garbage answer, then the used ceremony: refused with the RFC 6749 body.
    let finish = |form: Vec<(&'static str, String)>| {
        let (http, url, cookies) = (app.http.clone(), app.url("/passkeys/sign-in"), cookies.clone());
        async move { http.post(url).header(reqwest::header::COOKIE, cookies).form(&form).send().await.unwrap() }
    };
    let garbage =
        finish(vec![("csrf_token", csrf.clone()), ("ceremony", ceremony.clone()), ("response", "{}".into())])
            .await;
    assert_eq!(garbage.status(), 400);
    let refused: Value = garbage.json().await.unwrap();
    assert_eq!(refused["error"], "access_denied");
    assert!(refused["error_description"].is_string());
    let not_json =
        finish(vec![("csrf_token", csrf.clone()), ("ceremony", ceremony), ("response", "<".into())]).await;
    assert_eq!(not_json.status(), 400);
    assert_eq!(not_json.json::<Value>().await.unwrap()["error"], "invalid_request");
    // Registration needs a signed-in account.
    let register = app
        .http
        .post(app.url("/passkeys/register/options"))
        .header(reqwest::header::COOKIE, &cookies)
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(register.status(), 400);
    assert_eq!(register.json::<Value>().await.unwrap()["error_description"], "Sign in first.");

    // 40 parallel starts from one address: at most 30 ceremonies per five minutes.
    let racers: Vec<_> = (0..40).map(|_| tokio::spawn(options(csrf.clone(), cookies.clone()))).collect();
    let mut statuses = Vec::new();
    for racer in racers {
        statuses.push(racer.await.unwrap().status().as_u16());
    }
    let admitted = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(admitted, 29, "30 in the window, one used above: {statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 503), "{statuses:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_device_approval_signs_in_through_the_second_step_and_its_tokens_say_so() {
    let app = TestServer::spawn_with(crate::device_flow::TV).await;
    let uri = enrol_on_the_command_line(&app, "alice");
    // The app's secret is stored sealed with the signing encryption key, not as given.
    let stored = tessera_core::store::FactorStore::totp(app.provider.store.as_ref(), "alice-sub")
        .await
        .unwrap()
        .expect("a stored app");
    assert!(stored.sealed && stored.confirmed);
    let secret = totp_rs::Totp::from_url(&uri).unwrap().secret().as_bytes().to_vec();
    assert!(!stored.secret.windows(secret.len()).any(|window| window == secret.as_slice()), "sealed");

    let started = crate::device_flow::start(&app, "openid").await;
    let device_code = started["device_code"].as_str().unwrap();
    let mut browser = Browser::new(&app);
    let entry = browser.open(started["verification_uri_complete"].as_str().unwrap()).await;
    let code = entry.input("user_code").unwrap();
    let csrf = entry.input("csrf_token").unwrap();
    let to_login =
        browser.post("/device", &[("csrf_token", csrf.as_str()), ("user_code", code.as_str())]).await;
    let login = browser.follow(to_login).await;
    let second = browser.sign_in(&login, "alice", "alice-password-1").await;
    assert!(is_second_step(&second), "the device page's sign-in asks for the code too");
    let page = enter_code(&mut browser, &second, &code_at(&uri, now(&app))).await;
    assert!(page.body.contains("Connect Living Room TV?"), "back on /device to approve: {}", page.body);
    let csrf = page.input("csrf_token").unwrap();
    let done = browser
        .post(
            "/device/decision",
            &[("csrf_token", csrf.as_str()), ("user_code", code.as_str()), ("decision", "approve")],
        )
        .await;
    assert!(done.body.contains("Device connected"), "{}", done.body);
    let tokens: Value = crate::device_flow::poll(&app, device_code).await.json().await.unwrap();
    let claims = id_token_claims(&tokens);
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]), "{tokens}");
    assert_eq!(claims["acr"], "mfa");
    app.stop().await;
}
