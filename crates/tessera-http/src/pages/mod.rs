//! Server-rendered pages: askama templates (auto-escaped), strict security headers
//! (no framing, no scripts but the form-post nonce), and CSRF tokens.

use askama::Template;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_core::authorize::ClientRedirect;

use crate::App;
use crate::extract::cookies::{CSRF_COOKIE, HOST_PREFIX, cookie, set_cookie};

/// The sign-in form.
#[derive(Template)]
#[template(path = "login.html")]
pub(crate) struct LoginPage {
    pub base: String,
    pub csrf_token: String,
    pub interaction: Option<String>,
    pub return_to: Option<String>,
    pub client_name: Option<String>,
    pub username: String,
    pub message: Option<String>,
    /// Where `Sign in with a passkey` gets its options (with the interaction or
    /// `return_to`); `None` when passkeys are off.
    pub passkey_options_url: Option<String>,
    /// For the passkey script.
    pub nonce: String,
}

/// The second sign-in step: a code, or a passkey.
#[derive(Template)]
#[template(path = "second_factor.html")]
pub(crate) struct SecondFactorPage {
    pub base: String,
    pub csrf_token: String,
    pub username: String,
    /// The user has an authenticator app or recovery codes.
    pub code: bool,
    /// The user has a passkey (and passkeys are on).
    pub passkey: bool,
    pub message: Option<String>,
    /// For the passkey script.
    pub nonce: String,
}

/// Setting up an authenticator app: the QR code, the URI as text, and a code to confirm.
#[derive(Template)]
#[template(path = "set_up.html")]
pub(crate) struct SetUpPage {
    pub base: String,
    pub csrf_token: String,
    /// Where the form posts: the sign-in's set-up step or the account page's.
    pub action: String,
    /// The `otpauth://` URI as an inline SVG QR code (rendered by `qrcode`, trusted).
    pub qr_svg: String,
    pub uri: String,
    pub secret: String,
    pub message: Option<String>,
    /// Part of signing in (a client or the server requires a second factor).
    pub required: bool,
}

/// The account page.
#[derive(Template)]
#[template(path = "account.html")]
pub(crate) struct AccountPage {
    pub base: String,
    pub csrf_token: String,
    pub username: String,
    pub message: Option<String>,
    pub totp: bool,
    pub passkeys: Vec<AccountPasskey>,
    pub passkeys_enabled: bool,
    pub recovery_codes: u32,
    pub sessions: Vec<AccountSession>,
    /// Changes are allowed without verifying again.
    pub recent: bool,
    pub nonce: String,
}

/// A passkey on the account page.
pub(crate) struct AccountPasskey {
    pub id: String,
    pub name: String,
    pub added: String,
}

/// A session on the account page.
pub(crate) struct AccountSession {
    pub sid: String,
    pub signed_in: String,
    pub methods: String,
    pub current: bool,
}

/// New recovery codes, shown once.
#[derive(Template)]
#[template(path = "recovery_codes.html")]
pub(crate) struct RecoveryCodesPage {
    pub base: String,
    pub codes: Vec<String>,
}

/// Asks a signed-in user to prove who they are again before account changes.
#[derive(Template)]
#[template(path = "verify.html")]
pub(crate) struct VerifyPage {
    pub base: String,
    pub csrf_token: String,
    pub username: String,
    pub code: bool,
    pub message: Option<String>,
}

/// `content` as a QR code in inline SVG; empty if it does not fit one.
pub(crate) fn qr_svg(content: &str) -> String {
    match qrcode_svg::QrCode::new(content.as_bytes()) {
        Ok(code) => code
            .render::<qrcode_svg::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
        Err(error) => {
            tracing::error!(%error, "QR code failed");
            String::new()
        }
    }
}

/// The consent form.
#[derive(Template)]
#[template(path = "consent.html")]
pub(crate) struct ConsentPage {
    pub base: String,
    pub csrf_token: String,
    pub interaction: String,
    pub client_name: String,
    pub scopes: Vec<String>,
    pub username: String,
    /// For a client nobody registered with this server (a URL `client_id`, or one that
    /// registered itself): where it comes from and where the browser goes next.
    pub unvetted: Option<Unvetted>,
}

/// What the consent page says about a client the operator did not register.
pub(crate) struct Unvetted {
    /// The host of a URL `client_id`; `None` for a self-registered client.
    pub client_host: Option<String>,
    /// The host the browser is sent to after the decision.
    pub redirect_host: String,
}

/// The device code entry and approval page.
#[derive(Template)]
#[template(path = "device.html")]
pub(crate) struct DevicePage {
    pub base: String,
    pub csrf_token: String,
    pub user_code: String,
    /// Set once the code is found: the approval step.
    pub client_name: Option<String>,
    pub scopes: Vec<String>,
    pub username: String,
    pub message: Option<String>,
}

/// The signed-in user's pending CIBA requests.
#[derive(Template)]
#[template(path = "approvals.html")]
pub(crate) struct ApprovalsPage {
    pub base: String,
    pub csrf_token: String,
    pub username: String,
    pub requests: Vec<PendingApproval>,
}

/// One request on the approvals page.
pub(crate) struct PendingApproval {
    pub id: String,
    pub client_name: String,
    pub binding_message: Option<String>,
    pub scopes: String,
}

/// The sign-out confirmation.
#[derive(Template)]
#[template(path = "logout.html")]
pub(crate) struct LogoutPage {
    pub base: String,
    pub csrf_token: String,
    pub signed_in: bool,
    pub client_name: Option<String>,
    pub hidden: Vec<(String, String)>,
}

/// A message: errors that must not redirect, and confirmations.
#[derive(Template)]
#[template(path = "message.html")]
pub(crate) struct MessagePage {
    pub base: String,
    pub heading: String,
    pub message: String,
    pub detail: Option<String>,
}

/// The form-post response mode page.
#[derive(Template)]
#[template(path = "form_post.html")]
struct FormPostPage {
    action: String,
    params: Vec<(String, String)>,
    nonce: String,
}

/// A CSRF token for the page about to be rendered, and the cookie it pairs with
/// when the browser has none yet (double-submit, the token an HMAC of the cookie).
pub(crate) struct Csrf {
    pub token: String,
    pub set_cookie: Option<HeaderValue>,
}

impl App {
    /// The CSRF token for this browser, minting its cookie when it has none.
    pub(crate) fn csrf(&self, headers: &HeaderMap) -> Csrf {
        match self.read_cookie(headers, CSRF_COOKIE) {
            Some(value) => Csrf { token: self.csrf_token(value), set_cookie: None },
            None => {
                let value = self.provider.rng.token();
                let set = self.cookie(CSRF_COOKIE, &value, None);
                Csrf { token: self.csrf_token(&value), set_cookie: Some(set) }
            }
        }
    }

    fn csrf_token(&self, cookie_value: &str) -> String {
        URL_SAFE_NO_PAD.encode(aws_lc_rs::hmac::sign(&self.csrf_key, cookie_value.as_bytes()))
    }

    /// Whether a submitted form's token belongs to this browser's CSRF cookie
    /// (compared in constant time by `hmac::verify`).
    pub(crate) fn csrf_valid(&self, headers: &HeaderMap, submitted: Option<&str>) -> bool {
        let (Some(cookie_value), Some(submitted)) = (self.read_cookie(headers, CSRF_COOKIE), submitted)
        else {
            return false;
        };
        let Ok(tag) = URL_SAFE_NO_PAD.decode(submitted) else { return false };
        aws_lc_rs::hmac::verify(&self.csrf_key, cookie_value.as_bytes(), &tag).is_ok()
    }

    /// A link to `path` under the issuer's path.
    pub(crate) fn link(&self, path: &str) -> String {
        format!("{}{path}", self.base_path)
    }

    pub(crate) fn base(&self) -> String {
        self.base_path.clone()
    }

    /// A `Set-Cookie` under the issuer's path; on HTTPS a `__Host-` cookie, which
    /// must have `Path=/`.
    pub(crate) fn cookie(&self, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
        let path = if self.secure_cookies { "/" } else { self.base_path.as_str() };
        set_cookie(&self.cookie_name(name), value, path, self.secure_cookies, max_age)
    }

    /// The value of this server's cookie `name` (`__Host-` prefixed on HTTPS).
    pub(crate) fn read_cookie<'h>(&self, headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
        cookie(headers, &self.cookie_name(name))
    }

    fn cookie_name(&self, name: &str) -> String {
        if self.secure_cookies { format!("{HOST_PREFIX}{name}") } else { name.to_owned() }
    }

    /// A message page with `status`.
    pub(crate) fn message(
        &self,
        status: StatusCode,
        heading: &str,
        message: &str,
        detail: Option<String>,
    ) -> Response {
        let page =
            MessagePage { base: self.base(), heading: heading.into(), message: message.into(), detail };
        html(status, &page, Vec::new(), None)
    }
}

/// Renders a page with the security headers every page carries.
pub(crate) fn html(
    status: StatusCode,
    page: &impl Template,
    cookies: Vec<HeaderValue>,
    script_nonce: Option<&str>,
) -> Response {
    let body = match page.render() {
        Ok(body) => body,
        Err(error) => {
            tracing::error!(%error, "template failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "page could not be rendered").into_response();
        }
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // No framing (clickjacking), no scripts but a nonce'd one, no plugins, no base tag.
    // No form-action: Chrome applies it to the redirect chain that ends at the client.
    // A page's script may call back to this server (the passkey ceremonies), no further.
    let script = script_nonce
        .map_or_else(String::new, |nonce| format!("; script-src 'nonce-{nonce}'; connect-src 'self'"));
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'{script}"
    );
    if let Ok(csp) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    for cookie in cookies {
        headers.append(header::SET_COOKIE, cookie);
    }
    response
}

/// Sends an authorization response to the client: a 303 for `query`, an
/// auto-submitting form for `form_post`.
pub(crate) fn to_client(app: &App, redirect: &ClientRedirect, cookies: Vec<HeaderValue>) -> Response {
    match redirect.response_mode {
        tessera_core::authorize::ResponseMode::Query => see_other(&redirect.location(), cookies),
        tessera_core::authorize::ResponseMode::FormPost => {
            let nonce = app.provider.rng.identifier();
            let page = FormPostPage {
                action: redirect.redirect_uri.clone(),
                params: redirect.params.clone(),
                nonce,
            };
            html(StatusCode::OK, &page, cookies, Some(&page.nonce))
        }
    }
}

/// A 303 See Other to `location`.
pub(crate) fn see_other(location: &str, cookies: Vec<HeaderValue>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, location);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for cookie in cookies {
        headers.append(header::SET_COOKIE, cookie);
    }
    response
}
