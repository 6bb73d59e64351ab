//! `tessera login` as a person at a terminal runs it: the real binary against a running
//! server, approved (or not) through the real `/device` pages by the scripted browser.
//!
//! The server runs on a `MockClock` while the command waits in real time: a
//! [`RunningClock`] moves the server's clock five times faster than real time, so the
//! command's polls, five real seconds apart, are never "too soon" (`slow_down`).

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use tessera_core::clock::MockClock;

use crate::browser::Browser;
use crate::device_flow::{TV, approve};
use crate::support::{TestServer, temp_dir};

/// How long the command may take to show the code, or to finish after the decision.
const LIMIT: Duration = Duration::from_secs(15);

/// A running `tessera login`: its output collected as it comes; killed on drop.
struct Login {
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

/// Copies everything `pipe` yields into `buffer`, as it arrives (the dots have no newline).
fn collect(mut pipe: impl std::io::Read + Send + 'static, buffer: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(read @ 1..) = pipe.read(&mut chunk) {
            buffer.lock().unwrap().extend_from_slice(&chunk[..read]);
        }
    })
}

fn text(buffer: &Mutex<Vec<u8>>) -> String {
    String::from_utf8_lossy(&buffer.lock().unwrap()).into_owned()
}

impl Login {
    /// `tessera login --issuer <app> --client-id living-room` plus `args`.
    fn start(app: &TestServer, args: &[&str]) -> Self {
        let mut all = vec!["--client-id", "living-room"];
        all.extend_from_slice(args);
        Self::start_with(app, &all, &[])
    }

    /// `tessera login --issuer <app>` plus `args`, with `env` set.
    fn start_with(app: &TestServer, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["login", "--issuer", &app.issuer])
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (stdout, stderr) = (Arc::default(), Arc::default());
        let readers = vec![
            collect(child.stdout.take().unwrap(), Arc::clone(&stdout)),
            collect(child.stderr.take().unwrap(), Arc::clone(&stderr)),
        ];
        Self { child, stdout, stderr, readers }
    }

    /// Waits until standard error contains `needle`; returns it so far.
    async fn wait_for(&mut self, needle: &str) -> String {
        let started = Instant::now();
        loop {
            let shown = text(&self.stderr);
            if shown.contains(needle) {
                return shown;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "tessera login exited ({status}) before showing {needle:?}:\n{shown}{}",
                    text(&self.stdout)
                );
            }
            assert!(started.elapsed() < LIMIT, "no {needle:?} after {LIMIT:?}:\n{shown}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the command to exit: its status, standard output and standard error.
    async fn finish(mut self) -> (ExitStatus, String, String) {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                started.elapsed() < LIMIT,
                "tessera login still running after {LIMIT:?}:\n{}{}",
                text(&self.stderr),
                text(&self.stdout)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // The pipes closed with the process: the readers end at once.
        for reader in self.readers.drain(..) {
            reader.join().unwrap();
        }
        (status, text(&self.stdout), text(&self.stderr))
    }

    /// Sends Ctrl-C's signal.
    fn interrupt(&self) {
        let status = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }
}

impl Drop for Login {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Moves a server's `MockClock` five times faster than real time; stops on drop.
struct RunningClock(tokio::task::JoinHandle<()>);

impl RunningClock {
    fn start(clock: Arc<MockClock>) -> Self {
        Self(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                clock.advance(1);
            }
        }))
    }
}

impl Drop for RunningClock {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The link carrying the code, on its own line of the instructions.
fn verification_link(shown: &str) -> String {
    shown
        .lines()
        .find(|line| line.starts_with("http") && line.contains("/device?user_code="))
        .unwrap_or_else(|| panic!("no verification link in:\n{shown}"))
        .to_owned()
}

fn saved_file(dir: &Path) -> String {
    dir.join("tokens.json").display().to_string()
}

#[tokio::test]
async fn tessera_login_runs_the_device_flow_end_to_end() {
    let app = TestServer::spawn_with(TV).await;
    let dir = temp_dir("login");
    let save = saved_file(&dir);
    let _clock = RunningClock::start(app.clock.clone());
    let mut login = Login::start(&app, &["--scope", "openid profile", "--save", &save]);

    let shown = login.wait_for("Waiting for approval").await;
    let link = verification_link(&shown);
    let user_code = link.rsplit('=').next().unwrap();
    assert!(
        shown.starts_with(&format!(
            "To sign in, open {} and enter the code {user_code}\n",
            app.url("/device")
        )),
        "{shown}"
    );
    assert!(shown.contains('█') && shown.contains('▀'), "a QR code in half blocks:\n{shown}");

    let mut browser = Browser::new(&app);
    let done = approve(&mut browser, &link, "approve").await;
    assert!(done.contains("Device connected"), "{done}");

    let (status, stdout, stderr) = login.finish().await;
    assert_eq!(status.code(), Some(0), "{stderr}{stdout}");
    assert_eq!(
        stdout,
        format!(
            "Signed in as alice-sub.\nGranted scope: openid profile\n\
             The access token expires in 1 h; no refresh token was issued.\n\
             Tokens saved to {save} (readable by you only).\n"
        )
    );
    assert!(stderr.contains("Waiting for approval (the code expires in 10 min)."), "{stderr}");

    let metadata = std::fs::metadata(&save).unwrap();
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600, "the token file is private");
    let tokens: Value = serde_json::from_str(&std::fs::read_to_string(&save).unwrap()).unwrap();
    let access_token = tokens["access_token"].as_str().expect("an access_token saved");
    assert_eq!(app.verify_jwt(access_token).await["sub"], "alice-sub");
    let id_token = tokens["id_token"].as_str().expect("an ID token for openid");
    for secret in [access_token, id_token] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret), "a token was printed");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn tessera_login_exits_3_and_stores_nothing_when_the_user_denies() {
    let app = TestServer::spawn_with(TV).await;
    let dir = temp_dir("login-denied");
    let save = saved_file(&dir);
    let _clock = RunningClock::start(app.clock.clone());
    let mut login = Login::start(&app, &["--scope", "openid", "--save", &save, "--no-qr"]);
    let shown = login.wait_for("Waiting for approval").await;
    assert!(!shown.contains('█'), "--no-qr:\n{shown}");

    let mut browser = Browser::new(&app);
    let done = approve(&mut browser, &verification_link(&shown), "deny").await;
    assert!(done.contains("Request denied"), "{done}");

    let (status, stdout, stderr) = login.finish().await;
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert!(
        stderr.ends_with("tessera login: denied: the request was refused on the approval page\n"),
        "{stderr}"
    );
    assert_eq!(stdout, "");
    assert!(!Path::new(&save).exists(), "nothing stored");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn tessera_login_exits_4_when_the_code_expires_unapproved() {
    let app = TestServer::spawn_with(TV).await;
    let mut login = Login::start(&app, &["--scope", "openid", "--no-qr"]);
    login.wait_for("Waiting for approval").await;
    // RFC 8628 §3.5: past `expires_in` the next poll is `expired_token`.
    app.clock.advance(601);
    let (status, stdout, stderr) = login.finish().await;
    assert_eq!(status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("tessera login: expired: the code was not approved in time"), "{stderr}");
    assert_eq!(stdout, "");
}

#[tokio::test]
async fn tessera_login_stops_cleanly_on_ctrl_c() {
    let app = TestServer::spawn_with(TV).await;
    let dir = temp_dir("login-interrupted");
    let save = saved_file(&dir);
    let mut login = Login::start(&app, &["--scope", "openid", "--save", &save]);
    login.wait_for("Waiting for approval").await;
    login.interrupt();
    let (status, stdout, stderr) = login.finish().await;
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.ends_with("\nInterrupted: nothing was stored.\n"), "{stderr}");
    assert_eq!(stdout, "");
    assert!(!Path::new(&save).exists());
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn tessera_login_refuses_to_overwrite_a_file_before_asking_anything() {
    let app = TestServer::spawn_with(TV).await;
    let dir = temp_dir("login-exists");
    let save = saved_file(&dir);
    std::fs::write(&save, "keep me").unwrap();
    let login = Login::start(&app, &["--save", &save]);
    let (status, stdout, stderr) = login.finish().await;
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr,
        format!("tessera login: {save} exists: name another file, or add --force to replace it\n")
    );
    assert_eq!(stdout, "");
    assert_eq!(std::fs::read_to_string(&save).unwrap(), "keep me");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn tessera_login_authenticates_a_confidential_client_with_its_secret() {
    let app = TestServer::spawn_with(TV).await;
    let args = ["--client-id", "tv", "--scope", "api1.read", "--no-qr"];
    let wrong = Login::start_with(&app, &args, &[("TESSERA_CLIENT_SECRET", "not-the-secret")]);
    let (status, stdout, stderr) = wrong.finish().await;
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("tessera login: the device authorization endpoint refused: invalid_client"),
        "{stderr}"
    );
    assert_eq!(stdout, "");

    // Accepted: the device authorization starts and the code is shown.
    let mut right = Login::start_with(&app, &args, &[("TESSERA_CLIENT_SECRET", "tv-secret")]);
    let shown = right.wait_for("Waiting for approval").await;
    assert!(shown.starts_with("To sign in, open "), "{shown}");
    assert!(!shown.contains("tv-secret"));
    right.interrupt();
    assert_eq!(right.finish().await.0.code(), Some(130));
}
