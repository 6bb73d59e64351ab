//! The device authorization endpoint (RFC 8628 §3.1, §3.2) and user codes (§6.1).

use serde::Serialize;
use tracing::info;

use crate::decoupled;
use crate::model::{Client, Decision, GrantType, PendingAuthorization};
use crate::request::Params;
use crate::store::{DecoupledRequests, DeviceRequests, DeviceStore as _, Session};
use crate::{OAuthError, Provider};

/// How long the user has to enter the code.
pub const DEVICE_CODE_LIFETIME: i64 = 600;
/// RFC 8628 §3.2: the default minimum polling interval.
pub const POLL_INTERVAL: i64 = crate::model::DEVICE_POLL_INTERVAL;
/// RFC 8628 §6.1: consonants only (no vowels, no look-alikes), so no words and no
/// confusion; 8 characters give 20^8 ≈ 2^34.6 codes.
const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
const USER_CODE_LENGTH: usize = 8;

/// The response of the device authorization endpoint (RFC 8628 §3.2).
#[derive(Debug, Serialize)]
pub struct DeviceAuthorization {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
}

pub use crate::model::device_request_id as device_id;

/// A user code as typed: case-insensitive, hyphens and spaces ignored (§6.1).
#[must_use]
pub fn normalize_user_code(typed: &str) -> String {
    typed.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_uppercase()).collect()
}

/// `BCDF-GHJK`: the code as shown.
#[must_use]
pub fn display(normalized: &str) -> String {
    let (left, right) = normalized.split_at(normalized.len() / 2);
    format!("{left}-{right}")
}

/// Starts a device authorization for `client` (RFC 8628 §3.1).
///
/// # Errors
/// `unauthorized_client` without the device grant; `invalid_scope` for bad scopes.
pub async fn authorize(
    provider: &Provider,
    client: &Client,
    params: &Params,
) -> Result<DeviceAuthorization, OAuthError> {
    if !client.allows_grant(GrantType::DeviceCode) {
        return Err(OAuthError::unauthorized_client("client may not use the device grant"));
    }
    let scopes = provider.catalog.grant_user_access(client, params.get("scope"), params.resources())?.scopes;
    let now = provider.clock.now();
    let device_code = provider.rng.token();
    let id = device_id(&device_code);
    let mut request = PendingAuthorization {
        client_id: client.client_id.clone(),
        scopes,
        resources: params.resources().to_vec(),
        decision: Decision::Pending,
        expires_at: now + DEVICE_CODE_LIFETIME,
        user_code: None,
        subject: None,
        binding_message: None,
        ping: None,
        acr_values: Vec::new(),
    };
    // A drawn code another live request holds is drawn again: the store claims each
    // code atomically, so no two requests ever share one.
    let mut user_code = None;
    for _ in 0..5 {
        let code = random_user_code(&provider.rng);
        request.user_code = Some(code.clone());
        if provider.store.start_device_request(&id, &request, now).await? {
            user_code = Some(code);
            break;
        }
    }
    let Some(user_code) = user_code else { return Err(OAuthError::server_error("no free user code")) };
    info!(client_id = %client.client_id, "device authorization started");
    let verification_uri = provider.settings.endpoint("/device");
    Ok(DeviceAuthorization {
        device_code,
        verification_uri_complete: format!("{verification_uri}?user_code={}", display(&user_code)),
        user_code: display(&user_code),
        verification_uri,
        expires_in: DEVICE_CODE_LIFETIME,
        interval: POLL_INTERVAL,
    })
}

/// Eight letters drawn uniformly: a byte of 240 or more is skipped, since 256 is not
/// a multiple of 20 and the top values would favour the first letters.
fn random_user_code(rng: &crate::random::Rng) -> String {
    let mut code = String::with_capacity(USER_CODE_LENGTH);
    while code.len() < USER_CODE_LENGTH {
        for byte in rng.bytes::<16>() {
            if byte < 240 && code.len() < USER_CODE_LENGTH {
                code.push(char::from(USER_CODE_ALPHABET[usize::from(byte) % USER_CODE_ALPHABET.len()]));
            }
        }
    }
    code
}

/// The pending request a typed user code names, with its store key.
///
/// # Errors
/// When the store fails.
pub async fn find(
    provider: &Provider,
    typed: &str,
) -> Result<Option<(String, PendingAuthorization)>, OAuthError> {
    let normalized = normalize_user_code(typed);
    if normalized.len() != USER_CODE_LENGTH {
        return Ok(None);
    }
    provider.store.pending_device_request(&normalized, provider.clock.now()).await
}

/// User-code attempts allowed per address in the throttle window, on every path that
/// takes a user code together (RFC 8628 §5.1). Every attempt counts, right or wrong: it
/// is reserved before the code is looked up, so no burst gets more lookups than this.
/// A sign-in takes two (the code page and the decision), so this is ten sign-ins.
pub const MAX_USER_CODE_ATTEMPTS: u32 = 20;

/// What presenting a user code found.
#[derive(Debug)]
pub enum UserCodeCheck {
    /// Too many attempts from this address: the code was not looked at.
    Throttled,
    /// No pending, unexpired request has this code.
    Unknown,
    /// The pending request, with its id.
    Pending { id: String, request: Box<PendingAuthorization> },
}

/// Looks up a typed user code for a request from `address`, after reserving one
/// attempt in the store's counter for that address (one atomic increment): of any
/// number of racing attempts, at most [`MAX_USER_CODE_ATTEMPTS`] are looked up.
///
/// # Errors
/// When the store fails.
pub async fn check_user_code(
    provider: &Provider,
    typed: &str,
    address: &str,
) -> Result<UserCodeCheck, OAuthError> {
    let now = provider.clock.now();
    let key = format!("user-code:{address}");
    let attempts = provider.store.record_failure(&key, now, crate::attempts::FAILURE_WINDOW).await?;
    if attempts > MAX_USER_CODE_ATTEMPTS {
        tracing::warn!(address, "user code entry paused after repeated attempts");
        return Ok(UserCodeCheck::Throttled);
    }
    Ok(match find(provider, typed).await? {
        Some((id, request)) => UserCodeCheck::Pending { id, request: Box::new(request) },
        None => {
            info!("user code not recognised");
            UserCodeCheck::Unknown
        }
    })
}

/// Records the signed-in user's approval or denial of the request behind `user_code`,
/// throttled with the code page ([`check_user_code`]). The decision is one conditional
/// write: of racing decisions on one code exactly one takes effect.
///
/// # Errors
/// `invalid_request` when the request was decided meanwhile, or is gone.
pub async fn decide(
    provider: &Provider,
    typed: &str,
    session: &Session,
    approve: bool,
    address: &str,
) -> Result<UserCodeCheck, OAuthError> {
    let check = check_user_code(provider, typed, address).await?;
    let UserCodeCheck::Pending { id, .. } = &check else { return Ok(check) };
    let decision = if approve { decoupled::approval(session) } else { Decision::Denied };
    let now = provider.clock.now();
    let request =
        DecoupledRequests::<DeviceRequests>::decoupled_request(provider.store.as_ref(), id, now).await?;
    decoupled::check_decision(provider, request.as_ref(), &decision).await?;
    // One conditional write, which spends the code: of racing decisions one wins.
    if provider.store.decide_device_request(id, &decision, now).await?.is_none() {
        return Err(decoupled::lost_decision());
    }
    info!(subject = %session.subject, approve, "device authorization decided");
    Ok(check)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_eight_letters_of_the_alphabet() {
        let rng = crate::random::Rng::default();
        for _ in 0..1000 {
            let code = random_user_code(&rng);
            assert_eq!(code.len(), 8);
            assert!(code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)), "{code}");
        }
    }

    #[test]
    fn user_codes_are_case_and_hyphen_tolerant() {
        assert_eq!(normalize_user_code("bcdf-ghjk"), "BCDFGHJK");
        assert_eq!(normalize_user_code(" BCDF GHJK "), "BCDFGHJK");
        assert_eq!(display("BCDFGHJK"), "BCDF-GHJK");
    }
}
