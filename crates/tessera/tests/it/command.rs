//! The `tessera` command as an operator runs it.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use tessera_core::password::verify_password;

use crate::browser::{Browser, query};
use crate::code_flow::{authorization_url, redeem};
use crate::support::{TestServer, temp_dir};

fn tessera() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
}

fn quickstart() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart.toml")
}

#[test]
fn check_config_accepts_the_quickstart_example() {
    let output = tessera().arg("check-config").arg(quickstart()).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn check_config_names_file_table_and_key_of_every_error() {
    let dir = temp_dir("bad-config");
    let path = dir.join("bad.toml");
    std::fs::write(
        &path,
        r#"
issuer = "http://127.0.0.1:8080"
[[clients]]
client_id = "legacy"
allowed_grant_types = ["password"]
client_secrets = [{ value = "x" }]
require_pkce = false
colour = "blue"
"#,
    )
    .unwrap();
    let output = tessera().arg("check-config").arg(&path).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad.toml"), "{stderr}");
    for key in ["allowed_grant_types", "require_pkce", "colour"] {
        assert!(stderr.contains(key), "missing {key} in:\n{stderr}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn serve_issues_tokens_and_stops_gracefully_on_sigterm() {
    let dir = temp_dir("serve");
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let child = tessera()
        .args(["serve", "--config"])
        .arg(quickstart())
        .env("TESSERA__ISSUER", format!("http://127.0.0.1:{port}"))
        .env("TESSERA__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("TESSERA__STORAGE__URL", format!("sqlite://{}", dir.join("q.db").display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/token");
    let mut response = None;
    for _ in 0..100 {
        let attempt = http
            .post(&url)
            .basic_auth("service-a", Some("service-a-secret"))
            .form(&[("grant_type", "client_credentials"), ("scope", "api1.read")])
            .send()
            .await;
        if let Ok(ok) = attempt {
            response = Some(ok);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let response = response.expect("server came up");
    assert_eq!(response.status(), 200);

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap().unwrap();
    let logs = String::from_utf8_lossy(&exit.stderr);
    assert!(exit.status.success(), "exit {:?}:\n{logs}", exit.status);
    assert!(logs.contains("shutting down"), "{logs}");
    assert!(!logs.contains("service-a-secret"), "no secret in the logs");
    let _ = std::fs::remove_dir_all(dir);
}

/// `tessera users ARGS` on the quickstart configuration with its store at `storage_url`,
/// `stdin` piped in (so never a terminal: no prompt).
fn users(storage_url: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = tessera()
        .arg("users")
        .args(args)
        .arg("--config")
        .arg(quickstart())
        .env("TESSERA__STORAGE__URL", storage_url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A refused command may exit before reading: a broken pipe here is fine.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

/// Asserts `output` succeeded and returns its stdout.
fn succeeded(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "exit {:?}:\n{stderr}", output.status);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Asserts `output` failed and returns its stderr.
fn failed(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "unexpected success:\n{}", String::from_utf8_lossy(&output.stdout));
    stderr
}

/// The stored user `username`, read through the store the command wrote to:
/// (subject, password_hash, claims).
async fn stored_user(storage_url: &str, username: &str) -> Option<(String, String, serde_json::Value)> {
    use tessera_core::store::UserStore as _;
    let store = tessera_store_sql::SqlStore::connect(storage_url).await.unwrap();
    let user = store.user_by_username(username).await.unwrap();
    store.close().await;
    user.map(|user| (user.subject, user.password_hash, serde_json::Value::Object(user.claims)))
}

fn sqlite_url(dir: &std::path::Path) -> String {
    format!("sqlite://{}", dir.join("users.db").display())
}

/// Add, list and set-password on one store; passwords and hashes never printed.
async fn users_add_list_and_set_password(url: &str) {
    let add = users(
        url,
        &[
            "add",
            "carol",
            "--password-stdin",
            "--claim",
            "email=carol@example.com",
            "--claim",
            "email_verified=true",
        ],
        "carol-password-1\n",
    );
    let added = succeeded(&add);
    assert!(added.contains("added user carol"), "{added}");
    let (subject, hash, claims) = stored_user(url, "carol").await.expect("carol stored");
    assert!(!subject.is_empty(), "a subject is generated");
    assert!(hash.starts_with("$argon2id$"), "stored as an argon2id PHC string");
    assert!(verify_password("carol-password-1", &hash));
    assert_eq!(claims, serde_json::json!({ "email": "carol@example.com", "email_verified": true }));

    let list = users(url, &["list"], "");
    let listed = succeeded(&list);
    let lines: Vec<&str> = listed.lines().collect();
    assert!(lines.contains(&format!("carol\t{subject}\temail,email_verified").as_str()), "{listed}");
    assert!(lines.contains(&"alice\ta1b2c3\temail,email_verified,name"), "config users too:\n{listed}");
    // No `--password-stdin` and stdin not a terminal: the password is still read from stdin.
    let set = users(url, &["set-password", "carol"], "carol-password-2\n");
    assert!(succeeded(&set).contains("password set for user carol"));
    let (kept_subject, new_hash, kept_claims) = stored_user(url, "carol").await.unwrap();
    assert_eq!(kept_subject, subject);
    assert_eq!(kept_claims, claims);
    assert!(!verify_password("carol-password-1", &new_hash), "the old password no longer works");
    assert!(verify_password("carol-password-2", &new_hash));

    for output in [&add, &list, &set] {
        let all =
            format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(!all.contains("$argon2"), "no hash printed:\n{all}");
        assert!(!all.contains("carol-password"), "no password printed:\n{all}");
    }
}

#[tokio::test]
async fn users_add_list_and_set_password_manage_the_store() {
    let dir = temp_dir("users");
    users_add_list_and_set_password(&sqlite_url(&dir)).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn users_add_list_and_set_password_work_on_postgres() {
    let Ok(base_url) = std::env::var("TESSERA_TEST_POSTGRES") else {
        eprintln!("TESSERA_TEST_POSTGRES is not set: skipping the PostgreSQL run");
        return;
    };
    let schema = tessera_store_sql::testing::fresh_postgres_schema(&base_url).await.unwrap();
    users_add_list_and_set_password(&schema.url).await;
    schema.drop().await;
}

#[tokio::test]
async fn users_refuses_taken_names_unknown_users_and_weak_passwords() {
    let dir = temp_dir("users-refused");
    let url = sqlite_url(&dir);
    succeeded(&users(&url, &["add", "carol", "--password-stdin"], "carol-password-1\n"));

    let stderr = failed(&users(&url, &["add", "carol", "--password-stdin"], "other-password-1\n"));
    assert!(stderr.contains("user `carol` already exists"), "{stderr}");
    let (_, hash, _) = stored_user(&url, "carol").await.unwrap();
    assert!(verify_password("carol-password-1", &hash), "the existing user is untouched");
    // A username from the configuration is taken as well.
    let stderr = failed(&users(&url, &["add", "alice", "--password-stdin"], "other-password-1\n"));
    assert!(stderr.contains("user `alice` already exists"), "{stderr}");

    let stderr = failed(&users(&url, &["set-password", "dave", "--password-stdin"], "dave-password-1\n"));
    assert!(stderr.contains("no user `dave`"), "{stderr}");

    let stderr = failed(&users(&url, &["add", "dave", "--password-stdin"], "short\n"));
    assert!(stderr.contains("shorter than 8 characters"), "{stderr}");
    let stderr = failed(&users(&url, &["add", "dave", "--password-stdin"], "\n"));
    assert!(stderr.contains("the password is empty"), "{stderr}");
    let stderr = failed(&users(&url, &["set-password", "carol"], "short\n"));
    assert!(stderr.contains("shorter than 8 characters"), "{stderr}");
    assert!(stored_user(&url, "dave").await.is_none());
    let (_, hash, _) = stored_user(&url, "carol").await.unwrap();
    assert!(verify_password("carol-password-1", &hash));

    let stderr =
        failed(&users(&url, &["add", "erin", "--claim", "sub=x", "--password-stdin"], "erin-password-1\n"));
    assert!(stderr.contains("--subject"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn the_configuration_wins_for_a_username_it_names() {
    let dir = temp_dir("users-config-wins");
    let url = sqlite_url(&dir);
    let set = users(&url, &["set-password", "alice"], "temporary-password\n");
    succeeded(&set);
    assert!(String::from_utf8_lossy(&set.stderr).contains("next start"), "the operator is told");
    // Any later start (here, the next command) writes the configuration's password back.
    succeeded(&users(&url, &["list"], ""));
    let (subject, hash, _) = stored_user(&url, "alice").await.unwrap();
    assert_eq!(subject, "a1b2c3");
    assert!(verify_password("alice-password-1", &hash));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_user_added_on_the_command_line_survives_a_start_and_signs_in() {
    let dir = temp_dir("users-sign-in");
    let url = sqlite_url(&dir);
    let add =
        users(&url, &["add", "carol", "--subject", "carol-sub", "--password-stdin"], "carol-password-1\n");
    succeeded(&add);

    // A start with a configuration that does not name carol leaves her alone.
    let app = TestServer::spawn_instance("https://tessera.example", &url, dir).await;
    let (authorize, verifier) =
        authorization_url(&app, "web", "https://web.example/cb", "openid api1.read", &[]);
    let mut browser = Browser::new(&app);
    let login = browser.open(&authorize).await;
    let refused = browser.sign_in(&login, "carol", "carol-password-2").await;
    assert!(refused.location.is_none(), "a wrong password does not sign in");
    let redirect = browser.authorize(&authorize, "carol", "carol-password-1").await;
    let code = query(&redirect, "code").expect("a code");
    let response = redeem(&app, &code, &verifier, "https://web.example/cb").await;
    assert_eq!(response.status(), 200);
    let tokens: serde_json::Value = response.json().await.unwrap();
    let claims = app.verify_jwt(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["sub"], "carol-sub");
    app.stop().await;
}

#[test]
fn bff_refuses_a_bad_file_naming_every_key() {
    let dir = temp_dir("bff-bad");
    let path = dir.join("bff.toml");
    std::fs::write(
        &path,
        "[bff]\npublic_url = \"not a url\"\nissuer = \"http://127.0.0.1:1\"\nclient_id = \"spa\"\n\
         scopes = [\"profile\"]\nsession_idle = \"soon\"\n[[bff.apis]]\npath = \"/bff/x\"\nupstream = \"http://127.0.0.1:2\"\n",
    )
    .unwrap();
    let output = tessera().args(["bff", "--config"]).arg(&path).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for key in [
        "bff.toml",
        "bff.public_url",
        "bff.client_secret",
        "bff.scopes",
        "bff.session_idle",
        "bff.apis[0].path",
    ] {
        assert!(stderr.contains(key), "missing {key} in:\n{stderr}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn bff_starts_from_its_file_with_paths_relative_to_it_and_stops_on_sigterm() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let public_url = format!("http://127.0.0.1:{port}");
    let app = TestServer::spawn_with(&crate::bff::client_toml(&public_url)).await;
    let dir = temp_dir("bff-command");
    std::fs::create_dir_all(dir.join("dist")).unwrap();
    std::fs::write(dir.join("dist/index.html"), "<!doctype html><title>app</title>").unwrap();
    let path = dir.join("bff.toml");
    std::fs::write(
        &path,
        format!(
            "[bff]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"{public_url}\"\nissuer = \"{}\"\n\
             client_id = \"spa-bff\"\nclient_secret = \"spa-bff-secret\"\nstatic_dir = \"dist\"\n\
             storage = \"sqlite://bff.db\"\n",
            app.issuer
        ),
    )
    .unwrap();
    let child = tessera()
        .args(["bff", "--config"])
        .arg(&path)
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut login = None;
    for _ in 0..100 {
        if let Ok(response) = http.get(format!("{public_url}/bff/login")).send().await {
            login = Some(response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let login = login.expect("the BFF came up");
    assert_eq!(login.status(), 303);
    let location = login.headers()["location"].to_str().unwrap();
    assert!(location.starts_with(&format!("{}/authorize?", app.issuer)), "{location}");
    let page = http.get(format!("{public_url}/some/route")).send().await.unwrap();
    assert_eq!(page.text().await.unwrap(), "<!doctype html><title>app</title>", "static_dir beside the file");
    assert!(dir.join("bff.db").exists(), "storage beside the file, not in the working directory");

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap().unwrap();
    let logs = String::from_utf8_lossy(&exit.stderr);
    assert!(exit.status.success(), "exit {:?}:\n{logs}", exit.status);
    assert!(!logs.contains("spa-bff-secret"), "no secret in the logs");
    let _ = std::fs::remove_dir_all(dir);
}

/// Issue 12 §6: `tessera serve` raises its soft descriptor limit to the hard one at
/// start, and says in its log when the connection cap is reached and when it is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_raises_the_descriptor_limit_and_logs_the_connection_cap() {
    let dir = temp_dir("serve-limits");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    // Started with a low soft limit, as a default shell gives (1,024 or less).
    let mut command = Command::new("sh");
    command
        .args([
            "-c",
            "ulimit -Sn 256 2>/dev/null; exec \"$0\" \"$@\"",
            env!("CARGO_BIN_EXE_tessera"),
            "serve",
            "--config",
        ])
        .arg(quickstart())
        .env("TESSERA__ISSUER", format!("http://127.0.0.1:{port}"))
        .env("TESSERA__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("TESSERA__SERVER__MAX_CONNECTIONS", "4")
        .env("TESSERA__SERVER__IDLE_TIMEOUT", "1s")
        .env("TESSERA__STORAGE__URL", format!("sqlite://{}", dir.join("q.db").display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = command.spawn().unwrap();
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if http.get(format!("http://127.0.0.1:{port}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the server came up");
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let open_files = limits.lines().find(|l| l.starts_with("Max open files")).unwrap().to_owned();
    let numbers: Vec<&str> = open_files.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers[0], numbers[1], "soft limit raised to the hard one: {open_files}");

    // Five idle connections against a cap of four: the fifth waits, and the log says why.
    let mut idle = Vec::new();
    for _ in 0..5 {
        idle.push(tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(idle);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(http.get(format!("http://127.0.0.1:{port}/healthz")).send().await.unwrap().status().is_success());

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap().unwrap();
    let logs = String::from_utf8_lossy(&exit.stderr);
    assert!(logs.contains("connection cap reached"), "{logs}");
    assert!(logs.contains("max_connections"), "{logs}");
    let _ = std::fs::remove_dir_all(dir);
}
