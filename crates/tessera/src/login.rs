//! `tessera login`: the device authorization grant (RFC 8628) as the user of a
//! command-line tool sees it. Finds the endpoints through discovery, shows the code
//! (and a QR code of `verification_uri_complete`), polls the token endpoint at the
//! server's pace and reports the outcome.
//!
//! Tokens are never printed: they are written only to the `--save` file. Instructions,
//! the QR code and progress go to standard error; standard output carries only the
//! final summary. Nothing here reads the wall clock: waits use the monotonic clock and
//! expiry is reported relative to now.

use std::fmt;
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use base64::Engine as _;
use qrcode::QrCode;
use qrcode::render::unicode::Dense1x2;
use reqwest::{StatusCode, Url};
use serde_json::Value;
use tessera_core::secret::Secret;
use tokio::time::Instant;

/// RFC 8628 §3.4: the device grant's `grant_type`.
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// RFC 8628 §3.2: the polling interval when the server names none.
const DEFAULT_INTERVAL: u64 = 5;
/// RFC 8628 §3.5: what each `slow_down` adds to the interval.
const SLOW_DOWN_STEP: u64 = 5;
/// The longest interval that backing off after connection errors reaches.
const MAX_BACKOFF: u64 = 60;
/// How often the spinner turns on a terminal.
const SPINNER_TICK: Duration = Duration::from_millis(100);
const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// Exit status when something failed that is not one of the outcomes below.
pub const EXIT_FAILED: u8 = 1;
/// Exit status for a usage error, as clap's: here, a `--save` file that exists.
pub const EXIT_USAGE: u8 = 2;
/// Exit status when the user denied the request (`access_denied`).
pub const EXIT_DENIED: u8 = 3;
/// Exit status when the code expired before the user decided (`expired_token`).
pub const EXIT_EXPIRED: u8 = 4;
/// Exit status after Ctrl-C (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: u8 = 130;

/// What `tessera login` was asked to do.
#[derive(Debug)]
pub struct Options {
    /// The issuer; its discovery document names the endpoints.
    pub issuer: Url,
    /// The client signing in; it must be allowed the device grant.
    pub client_id: String,
    /// For a confidential client: sent with HTTP Basic (RFC 6749 §2.3.1).
    pub client_secret: Option<Secret>,
    /// Space-separated scopes to ask for.
    pub scope: String,
    /// Where to write the token response; nothing is stored without it.
    pub save: Option<PathBuf>,
    /// Replace the `save` file if it exists.
    pub force: bool,
    /// Show the QR code of the verification link.
    pub qr: bool,
}

/// Parses `--issuer`: an absolute URL, HTTPS unless on loopback.
///
/// # Errors
/// A message for clap when the URL is malformed or plain HTTP elsewhere.
pub fn parse_issuer(value: &str) -> Result<Url, String> {
    let url = Url::parse(value).map_err(|error| format!("not a URL: {error}"))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err("an issuer has no query or fragment (RFC 8414 §2)".into());
    }
    secure(&url).map_err(|failure| failure.to_string())?;
    Ok(url)
}

/// Runs the device flow and prints its outcome; the exit status tells which it was.
pub async fn run(options: &Options) -> ExitCode {
    if let Some(path) = &options.save
        && let Err(problem) = check_save_target(path, options.force)
    {
        say(format_args!("tessera login: {problem}\n"));
        return ExitCode::from(EXIT_USAGE);
    }
    let interrupted = async {
        // Without a Ctrl-C handler the default action (ending the process) still applies.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    // Decided after the select, once the flow (and its waiting line) has been dropped.
    let outcome = tokio::select! {
        outcome = sign_in(options) => Some(outcome),
        () = interrupted => None,
    };
    let Some(outcome) = outcome else {
        say(format_args!("Interrupted: nothing was stored.\n"));
        return ExitCode::from(EXIT_INTERRUPTED);
    };
    let tokens = match outcome {
        Ok(tokens) => tokens,
        Err(failure) => {
            say(format_args!("tessera login: {failure}\n"));
            return ExitCode::from(failure.exit_code());
        }
    };
    let mut summary = summary(&tokens, &options.scope);
    match &options.save {
        Some(path) => match save(path, &tokens, options.force) {
            Ok(()) => {
                summary.push_str(&format!("Tokens saved to {} (readable by you only).\n", path.display()))
            }
            Err(error) => {
                print_out(&summary);
                say(format_args!("tessera login: cannot write {}: {error}\n", path.display()));
                return ExitCode::from(EXIT_FAILED);
            }
        },
        None => summary.push_str("Tokens not stored: run with --save FILE to keep them.\n"),
    }
    print_out(&summary);
    ExitCode::SUCCESS
}

/// Why the flow ended without tokens.
#[derive(Debug)]
enum Failure {
    Denied,
    Expired,
    /// An OAuth error response (RFC 6749 §5.2) that ends the flow.
    Refused {
        endpoint: &'static str,
        error: String,
        description: Option<String>,
    },
    /// Anything else: transport, discovery, a response that is not OAuth.
    Other(String),
}

impl Failure {
    fn exit_code(&self) -> u8 {
        match self {
            Self::Denied => EXIT_DENIED,
            Self::Expired => EXIT_EXPIRED,
            Self::Refused { .. } | Self::Other(_) => EXIT_FAILED,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Denied => f.write_str("denied: the request was refused on the approval page"),
            Self::Expired => {
                f.write_str("expired: the code was not approved in time; run tessera login again")
            }
            Self::Refused { endpoint, error, description: Some(description) } => {
                write!(f, "the {endpoint} refused: {error}: {description}")
            }
            Self::Refused { endpoint, error, description: None } => {
                write!(f, "the {endpoint} refused: {error}")
            }
            Self::Other(message) => f.write_str(message),
        }
    }
}

/// The endpoints the flow needs, from the issuer's metadata.
struct Endpoints {
    device_authorization: Url,
    token: Url,
}

/// The device authorization response (RFC 8628 §3.2).
struct Started {
    device_code: Secret,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: Option<String>,
    expires_in: u64,
    interval: u64,
}

/// A response read as JSON, or why it could not be.
enum Reply {
    Success(Value),
    /// RFC 6749 §5.2.
    OAuthError {
        error: String,
        description: Option<String>,
    },
    Unexpected(StatusCode),
}

async fn sign_in(options: &Options) -> Result<Value, Failure> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(10))
        // The token endpoint answers directly; following a redirect could resend the secret.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("tessera/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| Failure::Other(format!("cannot build an HTTP client: {error}")))?;
    let endpoints = discover(&http, &options.issuer).await?;
    let started = start(&http, &endpoints, options).await?;
    show_instructions(&started, options.qr);
    let mut progress = Progress::new(started.expires_in);
    poll(&http, &endpoints, options, &started, &mut progress).await
}

/// Reads the endpoints from `{issuer}/.well-known/openid-configuration`.
async fn discover(http: &reqwest::Client, issuer: &Url) -> Result<Endpoints, Failure> {
    let issuer = issuer.as_str().trim_end_matches('/');
    let url = format!("{issuer}/.well-known/openid-configuration");
    let unreachable = |error: reqwest::Error| Failure::Other(format!("cannot read {url}: {error}"));
    let response = http.get(&url).send().await.map_err(unreachable)?;
    if !response.status().is_success() {
        return Err(Failure::Other(format!("cannot read {url}: HTTP {}", response.status())));
    }
    let metadata: Value = response.json().await.map_err(unreachable)?;
    // OpenID Connect Discovery §4.3: the document must name the issuer it was fetched
    // for. Lenient on a trailing slash only, which users type either way.
    let named = metadata["issuer"].as_str().unwrap_or_default();
    if named.trim_end_matches('/') != issuer {
        return Err(Failure::Other(format!("{url} is for issuer {named:?}, not {issuer}")));
    }
    let endpoint = |name: &str| -> Result<Url, Failure> {
        let value = metadata[name].as_str().ok_or_else(|| {
            Failure::Other(format!("{issuer} has no {name}: it does not offer the device flow"))
        })?;
        let url = Url::parse(value).map_err(|error| Failure::Other(format!("{name} {value:?}: {error}")))?;
        secure(&url)?;
        Ok(url)
    };
    Ok(Endpoints {
        device_authorization: endpoint("device_authorization_endpoint")?,
        token: endpoint("token_endpoint")?,
    })
}

/// OAuth 2.1 §1.5: credentials and tokens travel over TLS; plain HTTP only on loopback.
fn secure(url: &Url) -> Result<(), Failure> {
    let loopback = match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(address)) => address.is_loopback(),
        Some(url::Host::Ipv6(address)) => address.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(Failure::Other(format!("{url}: use https (plain http only on this machine's loopback)"))),
    }
}

/// POSTs `form` with the client's authentication: HTTP Basic with a secret (RFC 6749
/// §2.3.1, both parts form-encoded first), else `client_id` in the body (§2.2).
async fn post(
    http: &reqwest::Client,
    url: &Url,
    options: &Options,
    form: &[(&str, &str)],
) -> reqwest::Result<Reply> {
    let mut form = form.to_vec();
    let mut request = http.post(url.clone());
    match &options.client_secret {
        Some(secret) => {
            let encode =
                |value: &str| url::form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>();
            request = request.basic_auth(encode(&options.client_id), Some(encode(secret.expose())));
        }
        None => form.push(("client_id", options.client_id.as_str())),
    }
    let response = request.form(&form).send().await?;
    let status = response.status();
    let Ok(body) = response.json::<Value>().await else {
        return Ok(Reply::Unexpected(status));
    };
    if status.is_success() {
        return Ok(Reply::Success(body));
    }
    match body["error"].as_str() {
        Some(error) => Ok(Reply::OAuthError {
            error: error.to_owned(),
            description: body["error_description"].as_str().map(str::to_owned),
        }),
        None => Ok(Reply::Unexpected(status)),
    }
}

/// Starts the device authorization (RFC 8628 §3.1).
async fn start(http: &reqwest::Client, endpoints: &Endpoints, options: &Options) -> Result<Started, Failure> {
    let url = &endpoints.device_authorization;
    let reply = post(http, url, options, &[("scope", options.scope.as_str())])
        .await
        .map_err(|error| Failure::Other(format!("cannot reach {url}: {error}")))?;
    let body = match reply {
        Reply::Success(body) => body,
        Reply::OAuthError { error, description } => {
            return Err(Failure::Refused { endpoint: "device authorization endpoint", error, description });
        }
        Reply::Unexpected(status) => return Err(Failure::Other(format!("{url} answered HTTP {status}"))),
    };
    let text = |name: &str| body[name].as_str().map(str::to_owned);
    let missing = |name: &str| Failure::Other(format!("{url} answered without {name}"));
    Ok(Started {
        device_code: Secret::new(text("device_code").ok_or_else(|| missing("device_code"))?),
        user_code: text("user_code").ok_or_else(|| missing("user_code"))?,
        verification_uri: text("verification_uri").ok_or_else(|| missing("verification_uri"))?,
        verification_uri_complete: text("verification_uri_complete"),
        expires_in: body["expires_in"].as_u64().ok_or_else(|| missing("expires_in"))?,
        interval: body["interval"].as_u64().unwrap_or(DEFAULT_INTERVAL).max(1),
    })
}

fn show_instructions(started: &Started, qr: bool) {
    let mut text =
        format!("To sign in, open {} and enter the code {}\n", started.verification_uri, started.user_code);
    if let Some(complete) = &started.verification_uri_complete {
        // RFC 8628 §3.3.1: the code is still shown, for the user to compare on the page.
        let how = if qr { "open this link (or scan the QR code below)" } else { "open this link" };
        text.push_str(&format!("\nOr {how} and check that the page shows that code:\n{complete}\n"));
        if qr && let Some(code) = qr_code(complete) {
            text.push_str(&format!("\n{code}\n"));
        }
    }
    text.push('\n');
    say(format_args!("{text}"));
}

/// `text` as a QR code in Unicode half blocks: two rows of modules per line.
fn qr_code(text: &str) -> Option<String> {
    let code = QrCode::new(text.as_bytes()).ok()?;
    // Light modules drawn as blocks: terminals mostly draw light text on a dark
    // background, and a scanner needs dark modules on a light field (quiet zone included).
    Some(
        code.render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    )
}

/// Polls the token endpoint until the user decides or the code expires (RFC 8628 §3.4, §3.5).
async fn poll(
    http: &reqwest::Client,
    endpoints: &Endpoints,
    options: &Options,
    started: &Started,
    progress: &mut Progress,
) -> Result<Value, Failure> {
    let url = &endpoints.token;
    let form = [("grant_type", DEVICE_GRANT), ("device_code", started.device_code.expose())];
    let mut interval = started.interval;
    loop {
        // RFC 8628 §3.5: wait the interval before every request, the first included.
        progress.wait(Duration::from_secs(interval)).await;
        if progress.expired() {
            return Err(Failure::Expired);
        }
        let reply = post(http, url, options, &form).await;
        progress.polled();
        match reply {
            Ok(Reply::Success(tokens)) => return Ok(tokens),
            Ok(Reply::OAuthError { error, description }) => match error.as_str() {
                "authorization_pending" => {}
                "slow_down" => interval += SLOW_DOWN_STEP,
                "access_denied" => return Err(Failure::Denied),
                "expired_token" => return Err(Failure::Expired),
                _ => return Err(Failure::Refused { endpoint: "token endpoint", error, description }),
            },
            // RFC 8628 §3.5: back off exponentially when the server cannot be reached
            // or a proxy in front of it is failing; keep polling until the code expires.
            Err(error) if error.is_connect() || error.is_timeout() => {
                interval = (interval * 2).min(MAX_BACKOFF).max(interval);
                progress.note(&format!("cannot reach the token endpoint ({error}); waiting {interval} s"));
            }
            Ok(Reply::Unexpected(status)) if status.is_server_error() => {
                interval = (interval * 2).min(MAX_BACKOFF).max(interval);
                progress.note(&format!("the token endpoint answered HTTP {status}; waiting {interval} s"));
            }
            Ok(Reply::Unexpected(status)) => {
                return Err(Failure::Other(format!("{url} answered HTTP {status} without an OAuth error")));
            }
            Err(error) => return Err(Failure::Other(format!("cannot reach {url}: {error}"))),
        }
    }
}

/// The waiting line on standard error: a spinner redrawn in place on a terminal,
/// else a dot per poll (no control characters in a log file).
struct Progress {
    terminal: bool,
    deadline: Instant,
    line_open: bool,
    frame: usize,
}

impl Progress {
    fn new(expires_in: u64) -> Self {
        Self {
            terminal: std::io::stderr().is_terminal(),
            deadline: Instant::now() + Duration::from_secs(expires_in),
            line_open: false,
            frame: 0,
        }
    }

    fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Sleeps `duration` (not past the deadline), showing that it waits.
    async fn wait(&mut self, duration: Duration) {
        let until = (Instant::now() + duration).min(self.deadline);
        if !self.terminal {
            if !self.line_open {
                say(format_args!(
                    "Waiting for approval (the code expires in {})",
                    duration_text(self.left())
                ));
                self.line_open = true;
            }
            tokio::time::sleep_until(until).await;
            return;
        }
        while Instant::now() < until {
            self.frame = (self.frame + 1) % SPINNER.len();
            let left = duration_text(self.left());
            say(format_args!(
                "\r{} Waiting for approval (the code expires in {left})\x1b[K",
                SPINNER[self.frame]
            ));
            self.line_open = true;
            tokio::time::sleep_until(until.min(Instant::now() + SPINNER_TICK)).await;
        }
    }

    fn polled(&mut self) {
        if !self.terminal && self.line_open {
            say(format_args!("."));
        }
    }

    /// A line about a transient problem, keeping the waiting line below it.
    fn note(&mut self, message: &str) {
        self.finish();
        say(format_args!("{message}\n"));
    }

    fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Ends the waiting line: erased on a terminal, ended with a newline otherwise.
    fn finish(&mut self) {
        if self.line_open {
            say(format_args!("{}", if self.terminal { "\r\x1b[K" } else { "\n" }));
            self.line_open = false;
        }
    }
}

impl Drop for Progress {
    // Also on Ctrl-C, when the polling future is dropped mid-wait.
    fn drop(&mut self) {
        self.finish();
    }
}

/// What to tell the user on success: who, what scope, until when. Never a token.
fn summary(tokens: &Value, requested_scope: &str) -> String {
    let subject = tokens["id_token"].as_str().and_then(id_token_subject);
    let mut text = match subject {
        Some(subject) => format!("Signed in as {subject}.\n"),
        None => "Signed in.\n".to_owned(),
    };
    // RFC 6749 §5.1: an absent `scope` means the scope asked for was granted.
    let scope = tokens["scope"].as_str().unwrap_or(requested_scope);
    text.push_str(&format!("Granted scope: {scope}\n"));
    let refresh = if tokens["refresh_token"].is_string() {
        "a refresh token was issued"
    } else {
        "no refresh token was issued"
    };
    match tokens["expires_in"].as_u64() {
        Some(seconds) => text.push_str(&format!(
            "The access token expires in {}; {refresh}.\n",
            duration_text(Duration::from_secs(seconds))
        )),
        None => text.push_str(&format!("The access token's lifetime was not given; {refresh}.\n")),
    }
    text
}

/// The `sub` of an ID token, read without checking its signature: it is only shown,
/// and came straight from the token endpoint (OpenID Connect Core §3.1.3.7 allows this).
fn id_token_subject(id_token: &str) -> Option<String> {
    let payload = id_token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims["sub"].as_str().map(str::to_owned)
}

/// `45 s`, `10 min`, `1 h 30 min`: precise enough for a person.
fn duration_text(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min", seconds.div_ceil(60)),
        _ if seconds % 3600 < 60 => format!("{} h", seconds / 3600),
        _ => format!("{} h {} min", seconds / 3600, (seconds % 3600) / 60),
    }
}

/// Refuses, before the user is asked anything, a file that exists (without `force`) or
/// a folder that does not.
fn check_save_target(path: &Path, force: bool) -> Result<(), String> {
    if path.is_dir() {
        return Err(format!("{} is a folder: name a file to save the tokens to", path.display()));
    }
    if !force && path.symlink_metadata().is_ok() {
        return Err(format!("{} exists: name another file, or add --force to replace it", path.display()));
    }
    let parent = path.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(format!("{}: no such folder", parent.display()));
    }
    Ok(())
}

/// Writes the token response to `path`, readable by its owner only (mode 0600).
fn save(path: &Path, tokens: &Value, force: bool) -> std::io::Result<()> {
    let mut text = serde_json::to_string_pretty(tokens)?;
    text.push('\n');
    if !force {
        // `create_new`: a file that appeared since the check is not overwritten.
        return write_new(path, text.as_bytes());
    }
    // Written beside and renamed over: the old file is replaced whole, and the tokens
    // never sit in a file with the old file's (maybe wider) permissions.
    let name = path.file_name().ok_or_else(|| std::io::Error::other("no file name"))?;
    let temporary = path.with_file_name(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
    write_new(&temporary, text.as_bytes())?;
    std::fs::rename(&temporary, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })
}

fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes).and_then(|()| file.sync_all()).inspect_err(|_| {
        let _ = std::fs::remove_file(path);
    })
}

/// Writes to standard error; a closed stream is no reason to fail the sign-in.
fn say(text: fmt::Arguments<'_>) {
    let _ = std::io::stderr().write_fmt(text);
}

fn print_out(text: &str) {
    let _ = std::io::stdout().write_all(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_qr_code_shows_every_module_with_light_ones_as_blocks() {
        let text = "https://id.example/device?user_code=BCDF-GHJK";
        let rendered = qr_code(text).unwrap();
        let code = QrCode::new(text.as_bytes()).unwrap();
        let width = code.width();
        let quiet = 4;
        // Each character holds two rows: top and bottom half.
        let mut rows: Vec<Vec<bool>> = Vec::new();
        for line in rendered.lines() {
            let (top, bottom): (Vec<bool>, Vec<bool>) = line
                .chars()
                .map(|c| match c {
                    ' ' => (false, false),
                    '▀' => (true, false),
                    '▄' => (false, true),
                    '█' => (true, true),
                    other => panic!("unexpected {other:?}"),
                })
                .unzip();
            rows.push(top);
            rows.push(bottom);
        }
        let side = width + 2 * quiet;
        assert_eq!(rows[0].len(), side);
        for (y, row) in rows.iter().take(side).enumerate() {
            for (x, &block) in row.iter().enumerate() {
                let inside = (quiet..quiet + width).contains(&x) && (quiet..quiet + width).contains(&y);
                let dark = inside && code[(x - quiet, y - quiet)] == qrcode::Color::Dark;
                assert_eq!(block, !dark, "module ({x}, {y})");
            }
        }
    }

    #[test]
    fn durations_read_as_a_person_would_say_them() {
        assert_eq!(duration_text(Duration::from_secs(45)), "45 s");
        assert_eq!(duration_text(Duration::from_secs(600)), "10 min");
        assert_eq!(duration_text(Duration::from_secs(599)), "10 min");
        assert_eq!(duration_text(Duration::from_secs(3600)), "1 h");
        assert_eq!(duration_text(Duration::from_secs(5400)), "1 h 30 min");
    }

    #[test]
    fn the_summary_names_the_subject_and_scope_but_no_token() {
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"sub":"alice-sub"}"#);
        let tokens = serde_json::json!({
            "access_token": "at-secret",
            "id_token": format!("e30.{claims}.sig"),
            "refresh_token": "rt-secret",
            "scope": "openid profile",
            "expires_in": 3600,
        });
        let text = summary(&tokens, "openid profile offline_access");
        assert_eq!(
            text,
            "Signed in as alice-sub.\nGranted scope: openid profile\n\
             The access token expires in 1 h; a refresh token was issued.\n"
        );
        assert!(!text.contains("secret") && !text.contains("e30"));
    }

    #[test]
    fn without_scope_in_the_response_the_requested_one_was_granted() {
        let text = summary(&serde_json::json!({ "access_token": "x", "expires_in": 60 }), "api1.read");
        assert!(text.starts_with("Signed in.\nGranted scope: api1.read\n"), "{text}");
    }

    #[test]
    fn issuers_need_https_except_on_loopback() {
        assert!(parse_issuer("https://id.example").is_ok());
        assert!(parse_issuer("http://127.0.0.1:8080").is_ok());
        assert!(parse_issuer("http://localhost:8080/").is_ok());
        assert!(parse_issuer("http://[::1]:8080").is_ok());
        assert!(parse_issuer("http://id.example").unwrap_err().contains("use https"));
        assert!(parse_issuer("https://id.example/?x=1").is_err());
        assert!(parse_issuer("id.example").is_err());
    }

    #[test]
    fn saving_refuses_an_existing_file_unless_forced_and_writes_mode_0600() {
        let dir = std::env::temp_dir().join(format!("tessera-login-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tokens.json");
        check_save_target(&path, false).unwrap();
        save(&path, &serde_json::json!({ "access_token": "one" }), false).unwrap();
        assert!(check_save_target(&path, false).unwrap_err().contains("--force"));
        assert!(save(&path, &serde_json::json!({ "access_token": "two" }), false).is_err());
        check_save_target(&path, true).unwrap();
        save(&path, &serde_json::json!({ "access_token": "three" }), true).unwrap();
        let saved: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(saved["access_token"], "three");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no temporary file left");
        assert!(check_save_target(&dir.join("missing/tokens.json"), false).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
