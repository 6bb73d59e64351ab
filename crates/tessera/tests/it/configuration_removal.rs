//! What the configuration no longer declares stops working at the next start
//! (issue 11.3): a removed client or `[[users]]` entry is deleted from the store and
//! everything issued to it is revoked; users added with `tessera users` stay.

use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::browser::{Browser, query};
use crate::code_flow::{authorization_url, redeem};
use crate::device_flow::{self, TV};
use crate::support::{TestServer, oauth_error, temp_dir};

const ISSUER: &str = "https://tessera.example";

/// What the test's first configuration adds to the base: a service client, a user
/// and a CIBA client.
const DECLARED: &str = r#"
[[clients]]
client_id = "service-a"
allowed_grant_types = ["client_credentials"]
client_secrets = [{ value = "service-a-secret" }]
allowed_scopes = ["api1.read"]

[[clients]]
client_id = "teller"
client_name = "Bank Teller"
allowed_grant_types = ["urn:openid:params:grant-type:ciba"]
client_secrets = [{ value = "teller-secret" }]
allowed_scopes = ["openid", "profile"]

[[users]]
username = "carol"
password = "carol-password-1"
subject = "carol-sub"
"#;

/// The same without `service-a` and `carol`.
const REDUCED: &str = r#"
[[clients]]
client_id = "teller"
client_name = "Bank Teller"
allowed_grant_types = ["urn:openid:params:grant-type:ciba"]
client_secrets = [{ value = "teller-secret" }]
allowed_scopes = ["openid", "profile"]
"#;

async fn service_a_token(app: &TestServer) -> reqwest::Response {
    let form = [("grant_type", "client_credentials"), ("scope", "api1.read")];
    app.post_form("/token", Some(("service-a", "service-a-secret")), &form).await
}

async fn refresh(app: &TestServer, refresh_token: &str) -> reqwest::Response {
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
    app.post_form("/token", Some(("web", "web-secret")), &form).await
}

/// Whether `api1` (with its secret) finds the token active.
async fn active(app: &TestServer, token: &str) -> bool {
    let response = app.post_form("/introspect", Some(("api1", "api1-secret")), &[("token", token)]).await;
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["active"].as_bool().unwrap()
}

/// Signs `username` in for `web` and returns the token response.
async fn user_tokens(app: &TestServer, username: &str, password: &str) -> Value {
    let (url, verifier) =
        authorization_url(app, "web", "https://web.example/cb", "openid api1.read offline_access", &[]);
    let redirect = Browser::new(app).authorize(&url, username, password).await;
    let code = query(&redirect, "code").expect("a code");
    let response = redeem(app, &code, &verifier, "https://web.example/cb").await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_client_and_a_user_removed_from_the_configuration_stop_working_at_the_next_start() {
    let dir = temp_dir("removal");
    let url = format!("sqlite://{}", dir.join("shared.db").display());

    let first = TestServer::spawn_on_store_as(ISSUER, &url, &format!("{DECLARED}{TV}")).await;
    let response = service_a_token(&first).await;
    assert_eq!(response.status(), 200);
    let service_token = response.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    let carol = user_tokens(&first, "carol", "carol-password-1").await;
    let alice = user_tokens(&first, "alice", "alice-password-1").await;
    // A device request carol approved but the device has not redeemed yet.
    let device = device_flow::start(&first, "openid").await;
    let mut browser = Browser::new(&first);
    let login = browser.open("/login").await;
    browser.sign_in(&login, "carol", "carol-password-1").await;
    let entry = device["verification_uri_complete"].as_str().unwrap().trim_start_matches(ISSUER);
    device_flow::approve(&mut browser, entry, "approve").await;
    assert!(
        active(&first, &service_token).await && active(&first, carol["access_token"].as_str().unwrap()).await
    );
    first.stop().await;

    let second = TestServer::spawn_on_store_as(ISSUER, &url, &format!("{REDUCED}{TV}")).await;
    assert_eq!(oauth_error(service_a_token(&second).await).await, (401, "invalid_client".into()));
    assert!(!active(&second, &service_token).await, "the removed client's token is inactive");
    assert_eq!(
        oauth_error(refresh(&second, carol["refresh_token"].as_str().unwrap()).await).await,
        (400, "invalid_grant".into())
    );
    assert!(!active(&second, carol["access_token"].as_str().unwrap()).await, "the removed user's token too");
    let userinfo = second
        .http
        .get(second.url("/userinfo"))
        .bearer_auth(carol["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), 401);
    second.clock.advance(10);
    let poll = device_flow::poll(&second, device["device_code"].as_str().unwrap()).await;
    assert_eq!(oauth_error(poll).await, (400, "invalid_grant".into()), "carol's approval is void");
    let ciba = [("scope", "openid"), ("login_hint", "carol")];
    let asked = second.post_form("/bc-authorize", Some(("teller", "teller-secret")), &ciba).await;
    assert_eq!(oauth_error(asked).await, (400, "unknown_user_id".into()));
    let signed_in = Browser::new(&second).authorize_attempt("carol", "carol-password-1").await;
    assert!(signed_in.location.is_none(), "carol can no longer sign in");

    // Nothing else was touched: alice's grant refreshes, her token is active.
    assert!(active(&second, alice["access_token"].as_str().unwrap()).await);
    assert_eq!(refresh(&second, alice["refresh_token"].as_str().unwrap()).await.status(), 200);
    second.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

impl Browser<'_> {
    /// Opens `/login` and submits `username` and `password`.
    async fn authorize_attempt(&mut self, username: &str, password: &str) -> crate::browser::Page {
        let login = self.open("/login").await;
        self.sign_in(&login, username, password).await
    }
}

fn tessera() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
}

fn quickstart_text() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart.toml");
    std::fs::read_to_string(path).unwrap()
}

/// Runs `tessera ARGS` with the store at `storage_url`.
fn run(storage_url: &str, args: &[&str], stdin: &str) -> Output {
    use std::io::Write as _;
    let mut child = tessera()
        .args(args)
        .env("TESSERA__STORAGE__URL", storage_url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "exit {:?}:\n{stderr}", output.status);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn users_remove_takes_a_command_line_user_away_and_refuses_a_configured_one() {
    let dir = temp_dir("users-remove");
    let config = dir.join("quickstart.toml");
    std::fs::write(&config, quickstart_text()).unwrap();
    let config = config.to_str().unwrap();
    let url = format!("sqlite://{}", dir.join("users.db").display());
    stdout(&run(
        &url,
        &["users", "add", "carol", "--password-stdin", "--config", config],
        "carol-password-1\n",
    ));
    assert!(stdout(&run(&url, &["users", "list", "--config", config], "")).contains("carol\t"));

    let removed = stdout(&run(&url, &["users", "remove", "carol", "--config", config], ""));
    assert!(removed.contains("removed user carol"), "{removed}");
    assert!(!stdout(&run(&url, &["users", "list", "--config", config], "")).contains("carol\t"));

    let configured = run(&url, &["users", "remove", "alice", "--config", config], "");
    assert!(!configured.status.success());
    let stderr = String::from_utf8_lossy(&configured.stderr);
    assert!(stderr.contains("quickstart.toml") && stderr.contains("[[users]]"), "{stderr}");
    assert!(stdout(&run(&url, &["users", "list", "--config", config], "")).contains("alice\t"));

    let unknown = run(&url, &["users", "remove", "nobody", "--config", config], "");
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no user `nobody`"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn clients_list_and_check_config_say_what_a_start_would_remove() {
    let dir = temp_dir("clients-list");
    let full = dir.join("full.toml");
    std::fs::write(&full, quickstart_text()).unwrap();
    let url = format!("sqlite://{}", dir.join("clients.db").display());

    // No store yet: check-config says so and creates nothing.
    let fresh = stdout(&run(&url, &["check-config", full.to_str().unwrap()], ""));
    assert!(fresh.contains("does not exist yet"), "{fresh}");
    // The quickstart's short development secrets are accepted without a warning: they
    // are stored salted and slow (argon2id), not as a fast SHA-256.
    assert!(
        !fresh
            .lines()
            .any(|line| line.starts_with("warning:") && line.contains("service-a") && line.contains("value")),
        "{fresh}"
    );
    assert!(!fresh.contains("service-a-secret"), "never the secret itself");
    assert!(!dir.join("clients.db").exists());

    let listed = stdout(&run(&url, &["clients", "list", "--config", full.to_str().unwrap()], ""));
    assert!(listed.lines().any(|line| line.starts_with("service-a\tconfig\t")), "{listed}");
    assert!(!listed.contains("service-a-secret"), "no secret listed");
    let unchanged = stdout(&run(&url, &["check-config", full.to_str().unwrap()], ""));
    assert!(unchanged.contains("a start removes nothing"), "{unchanged}");

    let block = "[[clients]]\nclient_id = \"service-a\"\n";
    let text = quickstart_text();
    let start = text.find(block).expect("quickstart declares service-a");
    let end = text[start + block.len()..].find("\n[[").map_or(text.len(), |at| start + block.len() + at + 1);
    let reduced = dir.join("reduced.toml");
    std::fs::write(&reduced, format!("{}{}", &text[..start], &text[end..])).unwrap();
    let planned = stdout(&run(&url, &["check-config", reduced.to_str().unwrap()], ""));
    assert!(planned.contains("a start removes client service-a"), "{planned}");
    let listed = stdout(&run(&url, &["clients", "list", "--config", full.to_str().unwrap()], ""));
    assert!(listed.contains("service-a\t"), "check-config removed nothing");
    let listed = stdout(&run(&url, &["clients", "list", "--config", reduced.to_str().unwrap()], ""));
    assert!(!listed.contains("service-a\t"), "a start with the reduced file removed it:\n{listed}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn unencrypted_signing_keys_are_warned_about_at_every_start() {
    let dir = temp_dir("unencrypted-keys");
    let config = dir.join("quickstart.toml");
    std::fs::write(&config, quickstart_text()).unwrap();
    let url = format!("sqlite://{}", dir.join("keys.db").display());
    for start in 0..2 {
        let output = run(&url, &["keys", "list", "--config", config.to_str().unwrap()], "");
        stdout(&output);
        let logs = String::from_utf8_lossy(&output.stderr);
        assert!(
            logs.contains("signing keys are stored unencrypted: set signing.encryption_key"),
            "start {start}:\n{logs}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// `tessera clients add|rotate-secret|remove`: a client of the command line is added
/// from a TOML or JSON definition checked by the file's rules, survives a start with
/// the same file, gets a new secret printed once, and is removed; the file's clients
/// are refused.
#[test]
fn clients_add_rotate_secret_and_remove_on_the_command_line() {
    let dir = temp_dir("clients-cli");
    let config = dir.join("quickstart.toml");
    std::fs::write(&config, quickstart_text()).unwrap();
    let config = config.to_str().unwrap();
    let url = format!("sqlite://{}", dir.join("clients.db").display());
    let definition = dir.join("job.toml");
    std::fs::write(
        &definition,
        "client_id = \"job\"\nallowed_grant_types = [\"client_credentials\"]\n\
         client_secrets = [{ value = \"job-secret-1\" }]\nallowed_scopes = [\"api1.read\"]\n",
    )
    .unwrap();
    let added = stdout(&run(&url, &["clients", "add", "--config", config, definition.to_str().unwrap()], ""));
    assert!(added.contains("added client job"), "{added}");
    let again = run(&url, &["clients", "add", "--config", config, definition.to_str().unwrap()], "");
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("exists"));
    // JSON from standard input, checked by the file's rules.
    let bad = run(
        &url,
        &["clients", "add", "--config", config, "-"],
        r#"{"client_id": "bad", "allowed_grant_types": ["password"]}"#,
    );
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("allowed_grant_types"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );

    // A start (here: another command loading the same file) keeps it.
    let listed = stdout(&run(&url, &["clients", "list", "--config", config], ""));
    assert!(listed.lines().any(|line| line.starts_with("job\tcli\t")), "{listed}");

    let rotated = run(&url, &["clients", "rotate-secret", "--config", config, "job"], "");
    let secret = stdout(&rotated).trim().to_owned();
    assert!(secret.len() >= 43, "{secret}");
    assert!(!String::from_utf8_lossy(&rotated.stderr).contains(&secret), "printed once, on stdout");
    let stored = std::fs::read(dir.join("clients.db")).unwrap();
    assert!(!stored.windows(secret.len()).any(|w| w == secret.as_bytes()), "stored hashed only");

    for refused in [
        &["clients", "remove", "--config", config, "service-a"][..],
        &["clients", "rotate-secret", "--config", config, "service-a"],
    ] {
        let output = run(&url, refused, "");
        assert!(!output.status.success());
        assert!(String::from_utf8_lossy(&output.stderr).contains("configuration file"));
    }
    let removed = stdout(&run(&url, &["clients", "remove", "--config", config, "job"], ""));
    assert!(removed.contains("removed client job"));
    let listed = stdout(&run(&url, &["clients", "list", "--config", config], ""));
    assert!(!listed.contains("job\t"), "{listed}");
    let _ = std::fs::remove_dir_all(dir);
}
