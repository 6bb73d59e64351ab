//! The `tessera` command as an operator runs it.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::temp_dir;

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
