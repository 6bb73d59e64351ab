//! A request the user decides on another device while the client polls (the device
//! flow, RFC 8628, and CIBA): the document the device and CIBA stores hold.

use serde::{Deserialize, Serialize};

use super::ClientId;
use crate::Timestamp;
use crate::secret::SecretHash;

/// RFC 8628 §3.2: the device flow's default minimum polling interval.
pub const DEVICE_POLL_INTERVAL: i64 = 5;
/// CIBA Core §7.3: the minimum polling interval.
pub const CIBA_POLL_INTERVAL: i64 = 5;

/// The id a device code's request is stored under (its hash: the code itself is never
/// stored).
#[must_use]
pub fn device_request_id(device_code: &str) -> String {
    SecretHash::of(device_code).to_base64url()
}

/// The id an `auth_req_id`'s request is stored under (its hash: the id itself is never
/// stored).
#[must_use]
pub fn ciba_request_id(auth_req_id: &str) -> String {
    SecretHash::of(auth_req_id).to_base64url()
}

/// How long a decided or expired request is kept, so a late poll learns `expired_token`
/// rather than `invalid_grant`.
pub const KEPT_AFTER_EXPIRY: i64 = 3600;
/// RFC 8628 §3.5: each `slow_down` adds five seconds to the interval.
pub const SLOW_DOWN_STEP: i64 = 5;

/// The user's decision on a pending request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Decision {
    Pending,
    Approved {
        subject: String,
        auth_time: Timestamp,
        sid: String,
        /// How the approving user authenticated (RFC 8176), for the ID token.
        #[serde(default)]
        amr: Vec<String>,
    },
    Denied,
}

/// A request waiting for the user, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingAuthorization {
    pub client_id: ClientId,
    pub scopes: Vec<String>,
    pub resources: Vec<String>,
    pub decision: Decision,
    /// When the client must stop polling (`expires_in`).
    pub expires_at: Timestamp,
    /// Device flow: the code the user types. CIBA: none.
    #[serde(default)]
    pub user_code: Option<String>,
    /// CIBA: the user asked, and the message shown on both devices.
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub binding_message: Option<String>,
    /// CIBA ping mode: where and how to tell the client the result is ready.
    #[serde(default)]
    pub ping: Option<PingTarget>,
    /// CIBA `acr_values` (CIBA Core §7.1): the approving sign-in must reach one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acr_values: Vec<String>,
}

/// A ping-mode client's notification endpoint (CIBA Core §10.2). The ping must carry
/// the `auth_req_id`, which is stored only hashed like every other one: the ping
/// recomputes it from `seed` with a server key (`Provider::ping_auth_req_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PingTarget {
    pub endpoint: String,
    pub client_notification_token: String,
    /// Random; the `auth_req_id` is its HMAC under the server's key.
    pub seed: String,
}
