//! Passkeys (WebAuthn Level 2): registration, username-less sign-in and a second factor
//! after a password, as ceremonies whose halves the caller joins through a state string
//! kept server-side. All parsing and verification (CBOR, COSE, signatures, origin, RP ID,
//! challenge, counters) is `webauthn-rs`'s; this module chooses its policies and speaks JSON.
//!
//! Policies, all `webauthn-rs`'s passkey defaults: user verification is *required* (a passkey
//! is a whole sign-in, not one factor of it) and credentials carry `credProtect`
//! "user verification required"; registration asks for a discoverable (resident) key.

use aws_lc_rs::hmac;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;
use webauthn_rs::prelude::{
    AuthenticationResult, DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Uuid, Webauthn, WebauthnBuilder,
    WebauthnError,
};

use crate::clock::Timestamp;

/// Length of a WebAuthn user handle here: `webauthn-rs` carries it as a UUID.
pub const USER_HANDLE_LEN: usize = 16;

/// Longest name a user may give a passkey, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// Why a passkey ceremony failed. Messages say what went wrong, never what was sent.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// The browser's response is not a WebAuthn credential of the expected shape.
    #[error("malformed WebAuthn response")]
    MalformedResponse(#[source] serde_json::Error),
    /// The stored ceremony state is unreadable (not written by this module).
    #[error("malformed passkey ceremony state")]
    MalformedState(#[source] serde_json::Error),
    /// Options, state or a credential could not be written as JSON.
    #[error("cannot serialise passkey data")]
    Serialisation(#[source] serde_json::Error),
    /// The state belongs to another ceremony (registration state given to sign-in, ...).
    #[error("ceremony state is for {found}, not {expected}")]
    WrongCeremony {
        /// The ceremony the caller is finishing.
        expected: &'static str,
        /// The ceremony the state was started for.
        found: &'static str,
    },
    /// A stored passkey's `credential` is unreadable.
    #[error("malformed stored passkey")]
    MalformedCredential(#[source] serde_json::Error),
    /// The response was made for another origin (or cross-origin, in a frame).
    #[error("response made for another origin")]
    WrongOrigin,
    /// The authenticator data is for another relying party ID.
    #[error("response made for another relying party")]
    WrongRelyingParty,
    /// The signed challenge is not the one this ceremony issued.
    #[error("challenge mismatch")]
    ChallengeMismatch,
    /// The response is not a `webauthn.create` / `webauthn.get` of the right kind.
    #[error("response is for another kind of ceremony")]
    WrongResponseType,
    /// The credential is not among those given (not the user's, or deleted).
    #[error("unknown credential")]
    UnknownCredential,
    /// A discoverable sign-in response carried no user handle.
    #[error("response carries no user handle")]
    MissingUserHandle,
    /// The authenticator did not verify the user (PIN, biometrics) and it was required.
    #[error("user not verified")]
    UserNotVerified,
    /// The authenticator did not test for the user's presence.
    #[error("user not present")]
    UserNotPresent,
    /// The authenticator already holds a credential of this user (excluded at registration).
    #[error("credential already registered")]
    AlreadyRegistered,
    /// The signature counter did not move forward: the authenticator may be cloned.
    #[error("signature counter went backwards: possible cloned authenticator")]
    PossibleClone,
    /// The signature over the authenticator data does not verify.
    #[error("signature invalid")]
    SignatureInvalid,
    /// A user handle that is not [`USER_HANDLE_LEN`] bytes.
    #[error("user handle must be {USER_HANDLE_LEN} bytes")]
    InvalidUserHandle,
    /// An empty, over-long or control-character passkey name, or an empty user name.
    #[error("invalid name")]
    InvalidName,
    /// A second factor was asked of a user with no passkey.
    #[error("the user has no passkey")]
    NoPasskeys,
    /// Anything else `webauthn-rs` refused (attestation, algorithm, extensions, ...).
    #[error("WebAuthn verification failed")]
    Rejected(#[source] WebauthnError),
}

impl From<WebauthnError> for PasskeyError {
    fn from(error: WebauthnError) -> Self {
        match error {
            WebauthnError::InvalidRPOrigin | WebauthnError::CredentialCrossOrigin => Self::WrongOrigin,
            WebauthnError::InvalidRPIDHash => Self::WrongRelyingParty,
            WebauthnError::MismatchedChallenge => Self::ChallengeMismatch,
            WebauthnError::InvalidClientDataType => Self::WrongResponseType,
            WebauthnError::CredentialNotFound => Self::UnknownCredential,
            WebauthnError::InvalidUserUniqueId => Self::MissingUserHandle,
            WebauthnError::UserNotVerified => Self::UserNotVerified,
            WebauthnError::UserNotPresent => Self::UserNotPresent,
            WebauthnError::CredentialExcludedFromRequest | WebauthnError::CredentialAlreadyExists => {
                Self::AlreadyRegistered
            }
            WebauthnError::CredentialPossibleCompromise => Self::PossibleClone,
            WebauthnError::AuthenticationFailure | WebauthnError::SignatureInvalid => Self::SignatureInvalid,
            WebauthnError::InvalidUsername => Self::InvalidName,
            other => Self::Rejected(other),
        }
    }
}

/// A registered passkey as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPasskey {
    /// The WebAuthn credential ID (raw bytes), unique across all users.
    pub credential_id: Vec<u8>,
    /// The name the user gave it ("Laptop", "Phone").
    pub name: String,
    /// `webauthn-rs`'s `Passkey` (public key, counter, flags) as JSON: no secret.
    pub credential: String,
    /// When it was registered, Unix seconds.
    pub created_at: Timestamp,
}

impl StoredPasskey {
    /// Whether the key may leave its authenticator (backup eligible, e.g. synced by a
    /// platform's password manager). Unreadable flags count as software: the weaker claim.
    #[must_use]
    pub fn is_software(&self) -> bool {
        #[derive(Deserialize)]
        struct Flags {
            backup_eligible: bool,
        }
        #[derive(Deserialize)]
        struct Stored {
            cred: Flags,
        }
        serde_json::from_str::<Stored>(&self.credential).map_or(true, |stored| stored.cred.backup_eligible)
    }

    /// The RFC 8176 `amr` value for a sign-in with this key: `swk` for a synced
    /// (backup-eligible) key, `hwk` for one bound to its authenticator.
    #[must_use]
    pub fn amr(&self) -> &'static str {
        if self.is_software() { "swk" } else { "hwk" }
    }

    fn passkey(&self) -> Result<Passkey, PasskeyError> {
        serde_json::from_str(&self.credential).map_err(PasskeyError::MalformedCredential)
    }

    fn with_passkey(&self, passkey: &Passkey) -> Result<Self, PasskeyError> {
        let credential = serde_json::to_string(passkey).map_err(PasskeyError::Serialisation)?;
        Ok(Self { credential, ..self.clone() })
    }
}

/// A successful passkey sign-in or second factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedInWithPasskey {
    /// The credential used.
    pub credential_id: Vec<u8>,
    /// Whether the authenticator verified the user (always true under the required policy).
    pub user_verified: bool,
    /// The passkey with its counter or backup flags moved on: the caller stores it.
    pub updated: Option<StoredPasskey>,
}

/// The server half of a ceremony, between its start and its finish.
#[derive(Serialize, Deserialize)]
#[serde(tag = "ceremony", content = "state", rename_all = "snake_case")]
enum Ceremony {
    Registration(PasskeyRegistration),
    SignIn(DiscoverableAuthentication),
    SecondFactor(PasskeyAuthentication),
}

impl Ceremony {
    fn name(&self) -> &'static str {
        match self {
            Self::Registration(_) => "registration",
            Self::SignIn(_) => "sign-in",
            Self::SecondFactor(_) => "second factor",
        }
    }

    fn to_state(&self) -> Result<String, PasskeyError> {
        serde_json::to_string(self).map_err(PasskeyError::Serialisation)
    }

    fn from_state(state: &str) -> Result<Self, PasskeyError> {
        serde_json::from_str(state).map_err(PasskeyError::MalformedState)
    }

    fn wrong(&self, expected: &'static str) -> PasskeyError {
        PasskeyError::WrongCeremony { expected, found: self.name() }
    }
}

/// A stable, opaque WebAuthn user handle for `subject`: HMAC-SHA256 under `key`, cut to
/// [`USER_HANDLE_LEN`] bytes. WebAuthn §14.6.1: the handle must not reveal the account.
#[must_use]
pub fn derive_user_handle(key: &[u8], subject: &str) -> [u8; USER_HANDLE_LEN] {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), subject.as_bytes());
    let mut handle = [0; USER_HANDLE_LEN];
    handle.copy_from_slice(&tag.as_ref()[..USER_HANDLE_LEN]);
    handle
}

/// The relying party: its ID, the one origin its pages are served from, its name.
#[derive(Debug, Clone)]
pub struct Passkeys {
    webauthn: Webauthn,
}

impl Passkeys {
    /// A relying party `rp_id` (a registrable domain suffix of `origin`'s host, e.g.
    /// `example.com` for `https://login.example.com`) whose pages live at `origin`.
    ///
    /// # Errors
    /// When `rp_id` is not `origin`'s host or a parent domain of it (an IP-literal origin never
    /// is: browsers refuse WebAuthn there).
    pub fn new(rp_id: &str, origin: &Url, rp_name: &str) -> Result<Self, String> {
        let refused =
            |error: WebauthnError| format!("passkeys: rp_id {rp_id:?} and origin {origin}: {error}");
        let webauthn = WebauthnBuilder::new(rp_id, origin)
            .map_err(refused)?
            .rp_name(rp_name)
            .build()
            .map_err(refused)?;
        Ok(Self { webauthn })
    }

    /// The user handle and credential ID of a discoverable sign-in response, so the caller can
    /// load that user's passkeys before [`Passkeys::finish_sign_in`]. Neither is verified yet.
    ///
    /// # Errors
    /// [`PasskeyError::MalformedResponse`], or [`PasskeyError::MissingUserHandle`].
    pub fn user_handle_of(response: &Value) -> Result<(Vec<u8>, Vec<u8>), PasskeyError> {
        let credential =
            PublicKeyCredential::deserialize(response).map_err(PasskeyError::MalformedResponse)?;
        let handle = credential.get_user_unique_id().ok_or(PasskeyError::MissingUserHandle)?;
        Ok((handle.to_vec(), credential.get_credential_id().to_vec()))
    }

    /// Starts registering a discoverable passkey for the user `user_handle`
    /// ([`USER_HANDLE_LEN`] bytes, e.g. from [`derive_user_handle`]), excluding the
    /// authenticators that already hold one of `existing`. Returns the options for
    /// `navigator.credentials.create` (`{"publicKey": …}`) and the state to keep server-side.
    ///
    /// # Errors
    /// [`PasskeyError::InvalidUserHandle`], [`PasskeyError::InvalidName`] for an empty user
    /// name, [`PasskeyError::MalformedCredential`] for an unreadable stored passkey.
    pub fn start_registration(
        &self,
        user_handle: &[u8],
        username: &str,
        display_name: &str,
        existing: &[StoredPasskey],
    ) -> Result<(Value, String), PasskeyError> {
        let user = Uuid::from_slice(user_handle).map_err(|_| PasskeyError::InvalidUserHandle)?;
        let exclude = existing.iter().map(|key| key.credential_id.clone()).collect::<Vec<_>>();
        let display_name = if display_name.is_empty() { username } else { display_name };
        let (options, state) = self.webauthn.start_passkey_registration(
            user,
            username,
            display_name,
            (!exclude.is_empty()).then_some(exclude),
        )?;
        let mut options = serde_json::to_value(options).map_err(PasskeyError::Serialisation)?;
        // WebAuthn L2 §5.4.4: a discoverable credential, so sign-in needs no username.
        // webauthn-rs asks only opportunistically (`discouraged`) and never checks it later.
        if let Some(selection) = options.pointer_mut("/publicKey/authenticatorSelection") {
            selection["residentKey"] = "required".into();
            selection["requireResidentKey"] = true.into();
        }
        Ok((options, Ceremony::Registration(state).to_state()?))
    }

    /// Verifies the browser's `RegisterPublicKeyCredential` against `state` and returns the
    /// passkey to store under `name`. The caller must still refuse a `credential_id` that
    /// another account holds (WebAuthn L2 §7.1 step 22).
    ///
    /// # Errors
    /// Why the response was refused.
    pub fn finish_registration(
        &self,
        state: &str,
        response: &Value,
        name: &str,
        now: Timestamp,
    ) -> Result<StoredPasskey, PasskeyError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(PasskeyError::InvalidName);
        }
        let state = match Ceremony::from_state(state)? {
            Ceremony::Registration(state) => state,
            other => return Err(other.wrong("registration")),
        };
        let response =
            RegisterPublicKeyCredential::deserialize(response).map_err(PasskeyError::MalformedResponse)?;
        let passkey = self.webauthn.finish_passkey_registration(&response, &state)?;
        Ok(StoredPasskey {
            credential_id: passkey.cred_id().to_vec(),
            name: name.to_owned(),
            credential: serde_json::to_string(&passkey).map_err(PasskeyError::Serialisation)?,
            created_at: now,
        })
    }

    /// Starts a username-less sign-in: options for `navigator.credentials.get` with no
    /// `allowCredentials`, and the state to keep server-side.
    ///
    /// # Errors
    /// Only if `webauthn-rs` cannot make a challenge.
    pub fn start_sign_in(&self) -> Result<(Value, String), PasskeyError> {
        let (mut options, state) = self.webauthn.start_discoverable_authentication()?;
        // webauthn-rs marks this for conditional UI (autofill); the pages use a button.
        options.mediation = None;
        let options = serde_json::to_value(options).map_err(PasskeyError::Serialisation)?;
        Ok((options, Ceremony::SignIn(state).to_state()?))
    }

    /// Verifies a discoverable sign-in. `candidates` are the passkeys of the user whose
    /// handle [`Passkeys::user_handle_of`] read from this same response, and only theirs: the user
    /// handle is not signed, so the key's membership in that user's list is what binds them.
    ///
    /// # Errors
    /// [`PasskeyError::UnknownCredential`] when the key is not among `candidates`, or why the
    /// response was refused.
    pub fn finish_sign_in(
        &self,
        state: &str,
        response: &Value,
        candidates: &[StoredPasskey],
    ) -> Result<SignedInWithPasskey, PasskeyError> {
        let state = match Ceremony::from_state(state)? {
            Ceremony::SignIn(state) => state,
            other => return Err(other.wrong("sign-in")),
        };
        let response = PublicKeyCredential::deserialize(response).map_err(PasskeyError::MalformedResponse)?;
        if response.get_user_unique_id().is_none() {
            return Err(PasskeyError::MissingUserHandle);
        }
        let stored = find(candidates, response.get_credential_id())?;
        let mut passkey = stored.passkey()?;
        let result = self.webauthn.finish_discoverable_authentication_v2(
            &response,
            state,
            DiscoverableKey::from(&passkey),
        )?;
        signed_in(stored, &mut passkey, &result)
    }

    /// Starts a second factor for a user already identified (by a password): options for
    /// `navigator.credentials.get` listing `passkeys` in `allowCredentials`.
    ///
    /// # Errors
    /// [`PasskeyError::NoPasskeys`], or [`PasskeyError::MalformedCredential`].
    pub fn start_second_factor(&self, passkeys: &[StoredPasskey]) -> Result<(Value, String), PasskeyError> {
        if passkeys.is_empty() {
            return Err(PasskeyError::NoPasskeys);
        }
        let keys = passkeys.iter().map(StoredPasskey::passkey).collect::<Result<Vec<_>, _>>()?;
        let (options, state) = self.webauthn.start_passkey_authentication(&keys)?;
        let options = serde_json::to_value(options).map_err(PasskeyError::Serialisation)?;
        Ok((options, Ceremony::SecondFactor(state).to_state()?))
    }

    /// Verifies a second factor against `state`; `passkeys` are the same user's passkeys, to
    /// return the one used with its counter moved on.
    ///
    /// # Errors
    /// [`PasskeyError::UnknownCredential`] for a key not started with, or why the response
    /// was refused.
    pub fn finish_second_factor(
        &self,
        state: &str,
        response: &Value,
        passkeys: &[StoredPasskey],
    ) -> Result<SignedInWithPasskey, PasskeyError> {
        let state = match Ceremony::from_state(state)? {
            Ceremony::SecondFactor(state) => state,
            other => return Err(other.wrong("second factor")),
        };
        let response = PublicKeyCredential::deserialize(response).map_err(PasskeyError::MalformedResponse)?;
        let stored = find(passkeys, response.get_credential_id())?;
        // Checks the key against the allowCredentials that `state` recorded at the start.
        let result = self.webauthn.finish_passkey_authentication(&response, &state)?;
        let mut passkey = stored.passkey()?;
        signed_in(stored, &mut passkey, &result)
    }
}

/// What a verified use of `stored` (as `passkey`) tells the caller: the key, whether the
/// user was verified, and the key with its counter moved on when it changed.
fn signed_in(
    stored: &StoredPasskey,
    passkey: &mut Passkey,
    result: &AuthenticationResult,
) -> Result<SignedInWithPasskey, PasskeyError> {
    let updated = match passkey.update_credential(result) {
        Some(true) => Some(stored.with_passkey(passkey)?),
        _ => None,
    };
    Ok(SignedInWithPasskey {
        credential_id: result.cred_id().clone(),
        user_verified: result.user_verified(),
        updated,
    })
}

fn find<'a>(passkeys: &'a [StoredPasskey], credential_id: &[u8]) -> Result<&'a StoredPasskey, PasskeyError> {
    passkeys.iter().find(|key| key.credential_id == credential_id).ok_or(PasskeyError::UnknownCredential)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_cbor_2::Value as Cbor;
    use serde_json::json;

    use super::*;

    const ORIGIN: &str = "https://login.example.com";

    fn passkeys() -> Passkeys {
        Passkeys::new("example.com", &Url::parse(ORIGIN).unwrap(), "Example").unwrap()
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn challenge_of(options: &Value) -> String {
        options["publicKey"]["challenge"].as_str().unwrap().to_owned()
    }

    fn client_data(kind: &str, challenge: &str, origin: &str) -> String {
        b64(json!({ "type": kind, "challenge": challenge, "origin": origin }).to_string().as_bytes())
    }

    /// An attestation object (`none` format) whose authenticator data is for `rp_id`, with
    /// user present and verified and no credential: enough to reach the client-data checks.
    fn attestation_object(rp_id: &str) -> String {
        let mut auth_data =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, rp_id.as_bytes()).as_ref().to_vec();
        auth_data.extend_from_slice(&[0x05, 0, 0, 0, 0]);
        let object = BTreeMap::from([
            (Cbor::Text("fmt".into()), Cbor::Text("none".into())),
            (Cbor::Text("attStmt".into()), Cbor::Map(BTreeMap::new())),
            (Cbor::Text("authData".into()), Cbor::Bytes(auth_data)),
        ]);
        b64(&serde_cbor_2::to_vec(&Cbor::Map(object)).unwrap())
    }

    fn registration_response(client_data_json: &str, attestation_object: &str) -> Value {
        json!({
            "id": b64(b"credential-1"),
            "rawId": b64(b"credential-1"),
            "type": "public-key",
            "response": { "clientDataJSON": client_data_json, "attestationObject": attestation_object },
            "extensions": {},
        })
    }

    fn assertion_response(user_handle: Option<&[u8]>) -> Value {
        json!({
            "id": b64(b"credential-1"),
            "rawId": b64(b"credential-1"),
            "type": "public-key",
            "response": {
                "clientDataJSON": client_data("webauthn.get", "AAAA", ORIGIN),
                "authenticatorData": b64(&[0; 37]),
                "signature": b64(b"signature"),
                "userHandle": user_handle.map(b64),
            },
            "extensions": {},
        })
    }

    fn stored(credential_id: &[u8], credential: &str) -> StoredPasskey {
        StoredPasskey {
            credential_id: credential_id.to_vec(),
            name: "Laptop".into(),
            credential: credential.into(),
            created_at: 1_700_000_000,
        }
    }

    fn registration() -> (Value, String) {
        passkeys().start_registration(&[7; USER_HANDLE_LEN], "alice", "Alice", &[]).unwrap()
    }

    #[test]
    fn rp_id_must_be_the_origins_host_or_a_parent_domain() {
        let origin = Url::parse(ORIGIN).unwrap();
        assert!(Passkeys::new("login.example.com", &origin, "Example").is_ok());
        assert!(Passkeys::new("example.com", &origin, "Example").is_ok());
        assert!(Passkeys::new("other.com", &origin, "Example").is_err());
        assert!(Passkeys::new("ample.com", &origin, "Example").is_err());
    }

    #[test]
    fn an_ip_literal_origin_is_refused() {
        let origin = Url::parse("http://127.0.0.1:8080").unwrap();
        assert!(Passkeys::new("127.0.0.1", &origin, "Example").is_err());
        assert!(Passkeys::new("localhost", &Url::parse("http://localhost:8080").unwrap(), "Dev").is_ok());
    }

    #[test]
    fn registration_options_ask_for_a_discoverable_verified_credential() {
        let (options, _) = registration();
        let options = &options["publicKey"];
        assert_eq!(options["rp"], json!({ "id": "example.com", "name": "Example" }));
        assert_eq!(options["user"]["id"], b64(&[7; USER_HANDLE_LEN]));
        assert_eq!(options["user"]["name"], "alice");
        assert_eq!(options["user"]["displayName"], "Alice");
        assert_eq!(options["authenticatorSelection"]["residentKey"], "required");
        assert_eq!(options["authenticatorSelection"]["requireResidentKey"], true);
        assert_eq!(options["authenticatorSelection"]["userVerification"], "required");
        assert_eq!(URL_SAFE_NO_PAD.decode(challenge_of(&json!({ "publicKey": options }))).unwrap().len(), 32);
    }

    #[test]
    fn registration_excludes_the_users_existing_passkeys() {
        let existing = [stored(b"old-key", "{}")];
        let (options, _) =
            passkeys().start_registration(&[7; USER_HANDLE_LEN], "alice", "Alice", &existing).unwrap();
        assert_eq!(options["publicKey"]["excludeCredentials"][0]["id"], b64(b"old-key"));
    }

    #[test]
    fn a_user_handle_of_another_length_is_refused() {
        let started = passkeys().start_registration(b"alice", "alice", "Alice", &[]);
        assert!(matches!(started, Err(PasskeyError::InvalidUserHandle)));
    }

    #[test]
    fn derived_user_handles_are_stable_and_differ_per_subject_and_key() {
        assert_eq!(derive_user_handle(b"key", "alice"), derive_user_handle(b"key", "alice"));
        assert_ne!(derive_user_handle(b"key", "alice"), derive_user_handle(b"key", "bob"));
        assert_ne!(derive_user_handle(b"key", "alice"), derive_user_handle(b"other", "alice"));
        assert!(
            passkeys().start_registration(&derive_user_handle(b"key", "alice"), "alice", "", &[]).is_ok()
        );
    }

    #[test]
    fn registration_state_round_trips_through_json_to_the_challenge_check() {
        let (options, state) = registration();
        let state: String = serde_json::from_str::<Value>(&state).unwrap().to_string();
        let response = registration_response(
            &client_data("webauthn.create", &b64(b"another challenge"), ORIGIN),
            &attestation_object("example.com"),
        );
        let finished = passkeys().finish_registration(&state, &response, "Laptop", 0);
        assert!(matches!(finished, Err(PasskeyError::ChallengeMismatch)), "{finished:?}");
        assert!(options["publicKey"]["challenge"].is_string());
    }

    #[test]
    fn a_registration_response_from_another_origin_is_refused() {
        let (options, state) = registration();
        let response = registration_response(
            &client_data("webauthn.create", &challenge_of(&options), "https://evil.example.net"),
            &attestation_object("example.com"),
        );
        let finished = passkeys().finish_registration(&state, &response, "Laptop", 0);
        assert!(matches!(finished, Err(PasskeyError::WrongOrigin)), "{finished:?}");
    }

    #[test]
    fn a_registration_for_another_relying_party_is_refused() {
        let (options, state) = registration();
        let response = registration_response(
            &client_data("webauthn.create", &challenge_of(&options), ORIGIN),
            &attestation_object("other.com"),
        );
        let finished = passkeys().finish_registration(&state, &response, "Laptop", 0);
        assert!(matches!(finished, Err(PasskeyError::WrongRelyingParty)), "{finished:?}");
    }

    #[test]
    fn an_assertion_is_no_registration() {
        let (options, state) = registration();
        let response = registration_response(
            &client_data("webauthn.get", &challenge_of(&options), ORIGIN),
            &attestation_object("example.com"),
        );
        let finished = passkeys().finish_registration(&state, &response, "Laptop", 0);
        assert!(matches!(finished, Err(PasskeyError::WrongResponseType)), "{finished:?}");
    }

    #[test]
    fn malformed_responses_are_refused() {
        let (_, state) = registration();
        for response in
            [json!(null), json!({}), json!({ "id": "x", "rawId": "not base64!", "type": "public-key" })]
        {
            let finished = passkeys().finish_registration(&state, &response, "Laptop", 0);
            assert!(matches!(finished, Err(PasskeyError::MalformedResponse(_))), "{finished:?}");
        }
        let garbage = registration_response(&b64(b"{not json"), &b64(b"not cbor"));
        assert!(matches!(
            passkeys().finish_registration(&state, &garbage, "Laptop", 0),
            Err(PasskeyError::Rejected(_))
        ));
    }

    #[test]
    fn a_passkey_name_must_be_short_printable_text() {
        let (_, state) = registration();
        let response = registration_response("", "");
        for name in ["", "   ", "tab\there", &"x".repeat(MAX_NAME_CHARS + 1)] {
            let finished = passkeys().finish_registration(&state, &response, name, 0);
            assert!(matches!(finished, Err(PasskeyError::InvalidName)), "{name:?}: {finished:?}");
        }
    }

    #[test]
    fn a_state_serves_only_its_own_ceremony() {
        let (_, registration_state) = registration();
        let (_, sign_in_state) = passkeys().start_sign_in().unwrap();
        let response = assertion_response(Some(&[7; USER_HANDLE_LEN]));
        assert!(matches!(
            passkeys().finish_sign_in(&registration_state, &response, &[]),
            Err(PasskeyError::WrongCeremony { expected: "sign-in", found: "registration" })
        ));
        assert!(matches!(
            passkeys().finish_registration(&sign_in_state, &response, "Laptop", 0),
            Err(PasskeyError::WrongCeremony { expected: "registration", found: "sign-in" })
        ));
        assert!(matches!(
            passkeys().finish_second_factor(&sign_in_state, &response, &[]),
            Err(PasskeyError::WrongCeremony { .. })
        ));
    }

    #[test]
    fn an_unreadable_state_is_refused() {
        for state in ["", "{}", r#"{"ceremony":"sign_in","state":{}}"#] {
            let finished = passkeys().finish_sign_in(state, &assertion_response(Some(b"u")), &[]);
            assert!(matches!(finished, Err(PasskeyError::MalformedState(_))), "{state:?}: {finished:?}");
        }
    }

    #[test]
    fn sign_in_options_name_no_credential_and_no_mediation() {
        let (options, state) = passkeys().start_sign_in().unwrap();
        assert_eq!(options["publicKey"]["rpId"], "example.com");
        assert_eq!(options["publicKey"]["allowCredentials"], json!([]));
        assert_eq!(options["publicKey"]["userVerification"], "required");
        assert!(options.get("mediation").is_none_or(Value::is_null), "{options}");
        assert!(serde_json::from_str::<Value>(&state).unwrap()["ceremony"] == "sign_in");
    }

    #[test]
    fn the_user_handle_and_credential_id_are_read_before_verifying() {
        let response = assertion_response(Some(&[7; USER_HANDLE_LEN]));
        let (handle, credential_id) = Passkeys::user_handle_of(&response).unwrap();
        assert_eq!(handle, [7; USER_HANDLE_LEN]);
        assert_eq!(credential_id, b"credential-1");
        assert!(matches!(
            Passkeys::user_handle_of(&assertion_response(None)),
            Err(PasskeyError::MissingUserHandle)
        ));
        assert!(matches!(Passkeys::user_handle_of(&json!("x")), Err(PasskeyError::MalformedResponse(_))));
    }

    #[test]
    fn a_credential_not_among_the_users_passkeys_is_unknown() {
        let (_, state) = passkeys().start_sign_in().unwrap();
        let response = assertion_response(Some(&[7; USER_HANDLE_LEN]));
        let others = [stored(b"credential-2", "{}")];
        assert!(matches!(
            passkeys().finish_sign_in(&state, &response, &others),
            Err(PasskeyError::UnknownCredential)
        ));
    }

    #[test]
    fn a_discoverable_sign_in_without_user_handle_is_refused() {
        let (_, state) = passkeys().start_sign_in().unwrap();
        let finished = passkeys().finish_sign_in(&state, &assertion_response(None), &[]);
        assert!(matches!(finished, Err(PasskeyError::MissingUserHandle)));
    }

    #[test]
    fn a_second_factor_needs_a_passkey() {
        assert!(matches!(passkeys().start_second_factor(&[]), Err(PasskeyError::NoPasskeys)));
        assert!(matches!(
            passkeys().start_second_factor(&[stored(b"k", "not json")]),
            Err(PasskeyError::MalformedCredential(_))
        ));
    }

    #[test]
    fn backup_eligible_keys_are_software_keys() {
        let synced = stored(b"k", r#"{"cred":{"backup_eligible":true}}"#);
        let bound = stored(b"k", r#"{"cred":{"backup_eligible":false}}"#);
        assert_eq!((synced.is_software(), synced.amr()), (true, "swk"));
        assert_eq!((bound.is_software(), bound.amr()), (false, "hwk"));
        assert_eq!(stored(b"k", "unreadable").amr(), "swk");
    }

    #[test]
    fn a_stored_passkey_round_trips_through_json() {
        let key = stored(b"k", r#"{"cred":{}}"#);
        assert_eq!(
            serde_json::from_str::<StoredPasskey>(&serde_json::to_string(&key).unwrap()).unwrap(),
            key
        );
    }
}
