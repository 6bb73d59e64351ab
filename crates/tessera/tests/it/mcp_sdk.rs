//! The official MCP TypeScript SDK against Tessera: `tests/mcp/e2e.mjs` starts an MCP
//! server (the SDK's `McpServer`) that accepts only Tessera's access tokens for its URL,
//! and connects to it with the SDK's own OAuth client: 401, protected resource metadata
//! (RFC 9728), authorization server metadata (RFC 8414), registration (RFC 7591), the
//! code flow with PKCE and `resource` (RFC 8707) through the real sign-in and consent
//! pages, then `tools/list` and `tools/call`, and a refresh after the access token is
//! spoiled. The SDK is pinned in `tests/mcp/package-lock.json`. Without `node` and
//! `npm` the test skips, except under CI (`CI` set), where it fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::support::TestServer;

/// `crates/tessera/tests/mcp`: the script, its package.json and lock file.
fn mcp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp")
}

/// Whether `program --version` runs.
fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// `npm ci` in `tests/mcp`, once per test run (blocking).
fn npm_ci() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let output = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"])
            .current_dir(mcp_dir())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "npm ci in {} failed:\n{}\n{}",
            mcp_dir().display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    });
}

#[tokio::test]
async fn the_official_mcp_typescript_sdk_registers_signs_in_calls_a_tool_and_refreshes() {
    let tools = installed("node") && installed("npm");
    if !tools {
        assert!(
            std::env::var_os("CI").is_none(),
            "node or npm is missing, and CI must run the MCP SDK test: install Node.js 20+ with npm"
        );
        eprintln!("node or npm not installed: skipping the MCP TypeScript SDK test");
        return;
    }
    // The MCP server's URL is its resource name (and the tokens' `aud`), so its port is
    // chosen here and named in the configuration.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let resource = format!("http://127.0.0.1:{port}/mcp");
    let app = TestServer::spawn_with(&format!(
        r#"
[[api_scopes]]
name = "mcp:tools"
[[api_resources]]
name = "{resource}"
scopes = ["mcp:tools"]

[registration]
enabled = true
allowed_scopes = ["openid", "mcp:tools"]
"#
    ))
    .await;

    let issuer = app.issuer.clone();
    let output = tokio::task::spawn_blocking(move || {
        npm_ci();
        Command::new("node")
            .arg("e2e.mjs")
            .arg(&issuer)
            .arg(port.to_string())
            .env("TESSERA_MCP_E2E_REQUIRE_REFRESH", "1")
            .current_dir(mcp_dir())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "e2e.mjs failed ({}):\n{stdout}\n{stderr}", output.status);
    assert!(stdout.contains("PASS: "), "{stdout}");
    assert!(stdout.contains(&format!("\"aud\":\"{resource}\"")), "the token's aud: {stdout}");
}
