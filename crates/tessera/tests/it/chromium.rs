//! Sign-in in a real browser (the code flow, and the device flow's `/device` page): headless Chromium (Debian's `chromium`), driven over
//! WebDriver by `chromedriver` and fantoccini, through the real pages, their labels
//! and buttons, their stylesheet and their Content-Security-Policy.
//!
//! `scripts/test` installs Debian's `chromium` and `chromium-driver`. Without
//! `/usr/bin/chromedriver` these tests skip, except under CI (`CI` set), where they fail.
//! `TEST_SCREENSHOTS=1` keeps the screenshots of the login page and prints their paths.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::extract::{RawQuery, State};
use base64::Engine as _;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::code_flow::authorization_url;
use crate::device_flow;
use crate::support::{TestServer, oauth_error, temp_dir};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long a single page may take to appear.
pub(crate) const PAGE_WAIT: Duration = Duration::from_secs(20);
/// How long a whole test may take in the browser.
const TEST_LIMIT: Duration = Duration::from_secs(120);

/// A `chromedriver` child process: killed, with the Chromium it started, on drop.
struct ChromeDriver {
    child: Child,
    url: String,
    dir: PathBuf,
}

impl ChromeDriver {
    /// Starts `chromedriver` on a free loopback port, or `None` (skip) when it is not
    /// installed outside CI.
    async fn start() -> Option<Self> {
        if !Path::new(CHROMEDRIVER).exists() || !Path::new(CHROMIUM).exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "{CHROMEDRIVER} or {CHROMIUM} is missing, and CI must run the browser tests: \
                 install Debian's `chromium` and `chromium-driver` (scripts/test does)"
            );
            eprintln!("chromedriver not installed: skipping (scripts/test installs it)");
            return None;
        }
        let dir = temp_dir("chromium");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = std::fs::File::create(dir.join("chromedriver.log")).unwrap();
        let child = std::os::unix::process::CommandExt::process_group(
            Command::new(CHROMEDRIVER).arg(format!("--port={port}")).arg("--allowed-ips=127.0.0.1"),
            0,
        )
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {CHROMEDRIVER}: {error}"));
        let mut driver = Self { child, url: format!("http://127.0.0.1:{port}"), dir };
        driver.wait_ready().await;
        Some(driver)
    }

    async fn wait_ready(&mut self) {
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("chromedriver exited at start ({status}):\n{}", self.log());
            }
            if let Ok(response) = http.get(format!("{}/status", self.url)).send().await
                && let Ok(status) = response.json::<Value>().await
                && status["value"]["ready"] == true
            {
                return;
            }
            assert!(
                started.elapsed() < PAGE_WAIT,
                "chromedriver not ready after {PAGE_WAIT:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A new headless Chromium session with a fresh profile.
    async fn session(&self) -> Client {
        let profile = self.dir.join("profile");
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--window-size=1024,768",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        });
        let Value::Object(capabilities) = capabilities else { unreachable!() };
        // Plain HTTP to chromedriver: `ClientBuilder::rustls()` would call rustls'
        // `ClientConfig::builder()`, which panics with both ring and aws-lc-rs linked.
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .unwrap_or_else(|error| panic!("no Chromium session: {error}\n{}", self.log()))
    }

    /// The last lines chromedriver wrote.
    fn log(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("chromedriver.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // chromedriver leads its own process group: end it and any Chromium left over.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `test` in a fresh headless Chromium; closes the session and ends chromedriver
/// whether it passes or fails.
pub(crate) async fn in_chromium<F, Fut>(test: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(driver) = ChromeDriver::start().await else { return };
    let client = driver.session().await;
    let outcome = tokio::spawn(tokio::time::timeout(TEST_LIMIT, test(client.clone()))).await;
    let closed = client.close().await;
    match outcome {
        Ok(Ok(())) => closed.unwrap(),
        Ok(Err(_)) => panic!("browser test still running after {TEST_LIMIT:?}\n{}", driver.log()),
        Err(error) => {
            eprintln!("chromedriver log:\n{}", driver.log());
            drop(driver);
            std::panic::resume_unwind(error.into_panic());
        }
    }
}

/// The input that the `<label>` reading `text` is for.
pub(crate) async fn field_labelled(client: &Client, text: &str) -> fantoccini::elements::Element {
    let label = client
        .find(Locator::XPath(&format!("//label[normalize-space()='{text}']")))
        .await
        .unwrap_or_else(|error| panic!("no label {text:?}: {error}"));
    let id = label.attr("for").await.unwrap().unwrap_or_else(|| panic!("label {text:?} has no `for`"));
    client
        .find(Locator::Id(&id))
        .await
        .unwrap_or_else(|error| panic!("label {text:?} names no #{id}: {error}"))
}

/// Waits for, then clicks, the button reading `text`.
pub(crate) async fn click_button(client: &Client, text: &str) {
    let button = client
        .wait()
        .at_most(PAGE_WAIT)
        .for_element(Locator::XPath(&format!("//button[normalize-space()='{text}']")))
        .await
        .unwrap_or_else(|error| panic!("no button {text:?}: {error}"));
    button.click().await.unwrap();
}

/// Waits for the page whose `<h1>` reads `heading` and returns the page's visible text.
pub(crate) async fn wait_for_page(client: &Client, heading: &str) -> String {
    let found = client
        .wait()
        .at_most(PAGE_WAIT)
        .for_element(Locator::XPath(&format!("//h1[normalize-space()='{heading}']")))
        .await;
    if let Err(error) = found {
        let url = client.current_url().await.map(String::from).unwrap_or_default();
        panic!("no page {heading:?} ({error}) at {url}:\n{}", client.source().await.unwrap_or_default());
    }
    client.find(Locator::Css("body")).await.unwrap().text().await.unwrap()
}

/// Types the credentials into the fields found through their labels and signs in.
pub(crate) async fn sign_in(client: &Client, username: &str, password: &str) {
    let user = field_labelled(client, "Username").await;
    assert_eq!(user.attr("type").await.unwrap().as_deref(), Some("text"));
    user.clear().await.unwrap();
    user.send_keys(username).await.unwrap();
    let secret = field_labelled(client, "Password").await;
    assert_eq!(secret.attr("type").await.unwrap().as_deref(), Some("password"), "the password is masked");
    secret.send_keys(password).await.unwrap();
    click_button(client, "Sign in").await;
}

/// Checks that `png` is a non-empty PNG image and returns its width and height.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.len() > 1000, "a screenshot of {} bytes", png.len());
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG signature");
    assert_eq!(&png[12..16], b"IHDR");
    let number = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    (number(16), number(20))
}

/// Takes a screenshot into `dir/name`, checks it, and keeps it if `TEST_SCREENSHOTS` is set.
async fn screenshot(client: &Client, dir: &Path, name: &str) {
    let png = client.screenshot().await.unwrap();
    let (width, height) = png_size(&png);
    assert!(width >= 800 && height >= 500, "a {width}x{height} screenshot");
    let path = dir.join(name);
    std::fs::write(&path, &png).unwrap();
    if std::env::var_os("TEST_SCREENSHOTS").is_some() {
        println!("screenshot kept: {} ({width}x{height})", path.display());
    }
}

/// A directory for screenshots: removed at the end unless `TEST_SCREENSHOTS` is set.
struct ScreenshotDir(PathBuf);

impl Drop for ScreenshotDir {
    fn drop(&mut self) {
        if std::env::var_os("TEST_SCREENSHOTS").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A client application's redirect endpoint on loopback: records each query it gets.
pub(crate) async fn callback_server() -> (String, mpsc::UnboundedReceiver<String>) {
    let (sender, receiver) = mpsc::unbounded_channel::<String>();
    let app = axum::Router::new()
        .route(
            "/cb",
            axum::routing::get(
                |State(sender): State<mpsc::UnboundedSender<String>>, RawQuery(query): RawQuery| async move {
                    let _ = sender.send(query.unwrap_or_default());
                    axum::response::Html("<!doctype html><title>Client</title><h1>Signed in</h1>")
                },
            ),
        )
        .with_state(sender);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}/cb", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (uri, receiver)
}

pub(crate) fn query_param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs().find(|(key, _)| key == name).map(|(_, value)| value.into_owned())
}

pub(crate) fn jwt_claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT payload");
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap())
        .unwrap()
}

#[tokio::test]
async fn chromium_signs_in_consents_and_lands_on_the_redirect_uri_with_a_code() {
    in_chromium(|client| async move {
        let (redirect_uri, mut callbacks) = callback_server().await;
        let app = TestServer::spawn_with(&format!(
            "[[clients]]\nclient_id = \"browser\"\nclient_name = \"Browser App\"\n\
             allowed_grant_types = [\"authorization_code\"]\nclient_secrets = [{{ value = \"browser-secret\" }}]\n\
             redirect_uris = [\"{redirect_uri}\"]\nallowed_scopes = [\"openid\", \"profile\"]\n"
        ))
        .await;
        let (url, verifier) = authorization_url(&app, "browser", &redirect_uri, "openid profile", &[]);

        client.goto(&url).await.unwrap();
        let login = wait_for_page(&client, "Sign in").await;
        assert!(login.contains("to continue to Browser App"), "{login}");
        assert_eq!(client.title().await.unwrap(), "Sign in · Tessera");
        // The stylesheet loads under the page's CSP (style-src 'self').
        let card = client.find(Locator::Css("main.card")).await.unwrap();
        assert_eq!(card.css_value("border-top-left-radius").await.unwrap(), "12px", "tessera.css applied");
        sign_in(&client, "alice", "alice-password-1").await;

        let consent = wait_for_page(&client, "Allow access?").await;
        assert!(consent.contains("Browser App asks to:"), "{consent}");
        assert!(consent.contains("Signed in as alice."), "{consent}");
        click_button(&client, "Allow").await;

        let received = tokio::time::timeout(PAGE_WAIT, callbacks.recv())
            .await
            .expect("the browser reaches the client's redirect URI")
            .unwrap();
        wait_for_page(&client, "Signed in").await;
        let landed = client.current_url().await.unwrap();
        assert_eq!(landed.as_str().split('?').next(), Some(redirect_uri.as_str()));
        assert_eq!(landed.query(), Some(received.as_str()), "the browser shows what the client got");
        let code = query_param(&landed, "code").expect("a code");
        assert_eq!(query_param(&landed, "state").as_deref(), Some("st-123"));
        assert_eq!(query_param(&landed, "iss").as_deref(), Some(app.issuer.as_str()), "RFC 9207");

        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("code_verifier", verifier.as_str()),
            ("redirect_uri", redirect_uri.as_str()),
        ];
        let response = app.post_form("/token", Some(("browser", "browser-secret")), &form).await;
        assert_eq!(response.status(), 200);
        let tokens: Value = response.json().await.unwrap();
        let id_token = tokens["id_token"].as_str().expect("an ID token for openid");
        let claims = jwt_claims(id_token);
        assert_eq!((claims["sub"].as_str(), claims["aud"].as_str()), (Some("alice-sub"), Some("browser")));
        assert!(tokens["access_token"].is_string());
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn chromium_shows_a_wrong_password_on_the_login_page() {
    in_chromium(|client| async move {
        let app = TestServer::spawn().await;
        let shots = ScreenshotDir(temp_dir("screenshots"));
        let (url, _) = authorization_url(&app, "web", "https://web.example/cb", "openid profile", &[]);

        client.goto(&url).await.unwrap();
        let login = wait_for_page(&client, "Sign in").await;
        assert!(login.contains("to continue to Web App"), "{login}");
        assert!(!login.contains("Incorrect"), "{login}");
        screenshot(&client, &shots.0, "login.png").await;

        // The login page forbids framing: checked on the very URL the browser shows.
        // With the browser's cookies: the interaction belongs to the browser that started it.
        let login_url = client.current_url().await.unwrap();
        let cookies = client.get_all_cookies().await.unwrap();
        let cookies: Vec<String> = cookies.iter().map(|c| format!("{}={}", c.name(), c.value())).collect();
        let response =
            app.http.get(login_url.as_str()).header("cookie", cookies.join("; ")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let csp = response.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");

        sign_in(&client, "alice", "not-alices-password").await;
        let alert = client
            .wait()
            .at_most(PAGE_WAIT)
            .for_element(Locator::Css("[role=alert]"))
            .await
            .unwrap_or_else(|error| panic!("no alert: {error}"));
        assert_eq!(alert.text().await.unwrap(), "Incorrect username or password.");
        // Read once the alert is there: the page before the answer has the same heading.
        let page = wait_for_page(&client, "Sign in").await;
        assert!(page.contains("Incorrect username or password."), "{page}");
        let user = field_labelled(&client, "Username").await;
        assert_eq!(user.prop("value").await.unwrap().as_deref(), Some("alice"), "the username is kept");
        let secret = field_labelled(&client, "Password").await;
        assert_eq!(secret.prop("value").await.unwrap().as_deref(), Some(""), "the password is not echoed");
        screenshot(&client, &shots.0, "login-error.png").await;
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn chromium_enters_a_device_code_signs_in_and_approves_while_the_device_polls() {
    in_chromium(|client| async move {
        let app = TestServer::spawn_with(device_flow::TV).await;
        let started = device_flow::start(&app, "openid profile").await;
        let user_code = started["user_code"].as_str().unwrap();
        let device_code = started["device_code"].as_str().unwrap();
        let link = started["verification_uri_complete"].as_str().unwrap();

        let person = async {
            client.goto(link).await.unwrap();
            wait_for_page(&client, "Connect a device").await;
            let code = field_labelled(&client, "Code").await;
            assert_eq!(
                code.prop("value").await.unwrap().as_deref(),
                Some(user_code),
                "prefilled from the link"
            );
            click_button(&client, "Continue").await;

            wait_for_page(&client, "Sign in").await;
            sign_in(&client, "alice", "alice-password-1").await;
            // Signed in, the browser returns to the device page; the code is entered
            // again only if it is still the entry form.
            let confirm = "Connect Living Room TV?";
            let heading = client
                .wait()
                .at_most(PAGE_WAIT)
                .for_element(Locator::XPath(&format!(
                    "//h1[normalize-space()='Connect a device' or normalize-space()='{confirm}']"
                )))
                .await
                .unwrap_or_else(|error| panic!("not back on the device page: {error}"));
            if heading.text().await.unwrap() == "Connect a device" {
                let code = field_labelled(&client, "Code").await;
                assert_eq!(code.prop("value").await.unwrap().as_deref(), Some(user_code), "the code is kept");
                click_button(&client, "Continue").await;
            }
            let page = wait_for_page(&client, confirm).await;
            assert!(page.contains(&format!("Check that your device shows the code {user_code}.")), "{page}");
            assert!(page.contains("Signed in as alice."), "{page}");
            click_button(&client, "Approve").await;
            let done = wait_for_page(&client, "Device connected").await;
            assert!(done.contains("You can return to your device now."), "{done}");
        };
        // The device polls meanwhile at its interval: the server's clock moves 5 s a poll.
        let device = async {
            let mut pending = 0;
            loop {
                app.clock.advance(5);
                let response = device_flow::poll(&app, device_code).await;
                if response.status() == 200 {
                    return (response.json::<Value>().await.unwrap(), pending);
                }
                assert_eq!(oauth_error(response).await, (400, "authorization_pending".into()));
                pending += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        };
        let ((), (tokens, pending)) = tokio::join!(person, device);
        assert!(pending > 0, "the device was polling while the user approved");

        let access = app.verify_jwt(tokens["access_token"].as_str().unwrap()).await;
        assert_eq!(
            (access["sub"].as_str(), access["client_id"].as_str()),
            (Some("alice-sub"), Some("living-room"))
        );
        let id_token = jwt_claims(tokens["id_token"].as_str().expect("an ID token for openid"));
        assert_eq!(
            (id_token["sub"].as_str(), id_token["aud"].as_str()),
            (Some("alice-sub"), Some("living-room"))
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn chromium_stays_on_the_issuer_after_sign_in_with_a_tab_in_return_to() {
    in_chromium(|client| async move {
        let app = TestServer::spawn().await;
        // Issue 11.4: Chromium drops the tab and would land on //evil.example/x.
        client.goto(&app.url("/login?return_to=/%09/evil.example/x")).await.unwrap();
        wait_for_page(&client, "Sign in").await;
        sign_in(&client, "alice", "alice-password-1").await;
        let page = wait_for_page(&client, "Signed in").await;
        assert!(page.contains("You are signed in as alice."), "{page}");
        let url = client.current_url().await.unwrap();
        assert_eq!(url.origin(), url::Url::parse(&app.issuer).unwrap().origin(), "{url}");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn chromium_signs_in_from_the_device_page_and_denies_at_once() {
    in_chromium(|client| async move {
        let app = TestServer::spawn_with(device_flow::TV).await;
        let started = device_flow::start(&app, "openid profile").await;
        let user_code = started["user_code"].as_str().unwrap();
        let device_code = started["device_code"].as_str().unwrap();

        client.goto(&app.url("/device")).await.unwrap();
        wait_for_page(&client, "Connect a device").await;
        field_labelled(&client, "Code").await.send_keys(user_code).await.unwrap();
        click_button(&client, "Continue").await;
        wait_for_page(&client, "Sign in").await;
        sign_in(&client, "alice", "alice-password-1").await;
        // Back from sign-in with a live code: the decision itself, no second Continue.
        let page = wait_for_page(&client, "Connect Living Room TV?").await;
        assert!(page.contains(&format!("Check that your device shows the code {user_code}.")), "{page}");
        click_button(&client, "Deny").await;
        let done = wait_for_page(&client, "Request denied").await;
        assert!(done.contains("The device was not connected."), "{done}");

        app.clock.advance(5);
        assert_eq!(
            oauth_error(device_flow::poll(&app, device_code).await).await,
            (400, "access_denied".into())
        );
        app.stop().await;
    })
    .await;
}
