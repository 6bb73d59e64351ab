//! `refresh_token` grant (RFC 6749 §6) with rotation and reuse detection
//! (RFC 9700 §4.14.2): every use returns a new token; a used one revokes the family.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::{GrantContext, GrantHandler, Issue, RefreshPlan, UserGrant};
use crate::OAuthError;
use crate::Timestamp;
use crate::catalog::parse_scope;
use crate::model::{GrantId, GrantType};
use crate::request::Params;
use crate::secret::{Secret, SecretHash, constant_time_eq};
use crate::settings::RefreshExpiration;
use crate::store::{Consumed, Flow, FlowStore, GrantStores, RefreshRecord};

/// Exchanges a refresh token for new tokens and a new refresh token.
pub struct RefreshToken {
    /// Derives a token's successor from it: HMAC-SHA256 under the instances' shared
    /// secret, as unguessable as a random token to anyone without the secret, but the
    /// same on every attempt and every instance. So a rotation whose commit was in
    /// doubt can answer its retry with the successor it stored, which exists in the
    /// store only as a hash.
    successor_key: aws_lc_rs::hmac::Key,
    /// Rotations answered `temporarily_unavailable` that may have committed.
    in_doubt: InDoubtRotations,
}

impl RefreshToken {
    /// The grant, deriving successors under `successor_secret`.
    #[must_use]
    pub fn new(successor_secret: &[u8]) -> Self {
        Self {
            successor_key: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, successor_secret),
            in_doubt: InDoubtRotations::default(),
        }
    }

    /// The refresh token that succeeds `presented` when it rotates.
    fn successor(&self, presented: &str) -> Secret {
        let tag = aws_lc_rs::hmac::sign(&self.successor_key, presented.as_bytes());
        Secret::new(crate::secret::b64url(tag))
    }
}

#[async_trait]
impl GrantHandler for RefreshToken {
    fn grant_type(&self) -> GrantType {
        GrantType::RefreshToken
    }

    async fn handle(&self, cx: &GrantContext<'_>, params: &Params) -> Result<Issue, OAuthError> {
        let request = RefreshRequest::parse(params)?;
        let presented_value = request.refresh_token;
        let presented = SecretHash::of(presented_value);
        let store = cx.store;
        let record = match store.refresh_token(&presented).await? {
            Consumed::Fresh(record) => record,
            Consumed::Replayed { grant_id } => {
                return self.replayed(cx, &request, &presented, &grant_id).await;
            }
            Consumed::Missing => {
                return Err(OAuthError::invalid_grant("unknown, expired or revoked refresh token"));
            }
        };
        let (scopes, audience) = check_use(cx, &request, &record)?;
        if !cx.client.refresh_token_rotation {
            // FAPI 2.0 §5.3.2.1: a confidential client may keep its refresh token; it
            // stays valid until it expires or its grant is revoked (config forbids this
            // for public clients and for sliding expiry).
            return Ok(issue(record, scopes, audience, Secret::new(presented_value.to_owned())));
        }
        // The successor is derived from the presented token, not drawn at random, so a
        // rotation whose commit was in doubt can answer its retry with the same
        // successor (see `replayed`).
        let next = self.successor(presented_value);
        let idle_expires_at = (cx.client.refresh_token_expiration == RefreshExpiration::Sliding)
            .then(|| (cx.now + cx.client.sliding_refresh_token_lifetime).min(record.expires_at));
        // The successor keeps the grant's full scope and its absolute expiry.
        let successor = RefreshRecord { issued_at: cx.now, idle_expires_at, ..record.clone() };
        match store.rotate_refresh_token(&presented, &SecretHash::of(next.expose()), &successor, cx.now).await
        {
            Ok(Consumed::Fresh(())) => {}
            Ok(Consumed::Replayed { grant_id }) => {
                return self.replayed(cx, &request, &presented, &grant_id).await;
            }
            Ok(Consumed::Missing) => {
                return Err(OAuthError::invalid_grant("unknown, expired or revoked refresh token"));
            }
            Err(error) => {
                if error.is_unavailable() {
                    // The store may have made the rotation durable without telling us
                    // (the PostgreSQL store already tried to settle it): let a retry of
                    // this token be answered from its successor rather than as reuse.
                    self.in_doubt.note(store.clone(), &presented, cx.now);
                }
                return Err(error.into());
            }
        }
        Ok(issue(record, scopes, audience, next))
    }
}

/// RFC 6749 §6: the refresh request, parsed before the token is looked up.
struct RefreshRequest<'p> {
    refresh_token: &'p str,
    /// The narrower scope asked for, if any (its words; whether they were granted is
    /// the token's to say).
    scope: Option<Vec<String>>,
}

impl<'p> RefreshRequest<'p> {
    fn parse(params: &'p Params) -> Result<Self, OAuthError> {
        Ok(Self {
            refresh_token: params.require("refresh_token")?,
            scope: params.get("scope").map(parse_scope).transpose()?,
        })
    }
}

/// Checks a refresh token's use by this request, before anything changes (a wrong
/// client, key or scope uses nothing up); returns the scopes and audience to issue.
fn check_use(
    cx: &GrantContext<'_>,
    request: &RefreshRequest<'_>,
    record: &RefreshRecord,
) -> Result<(Vec<String>, Vec<String>), OAuthError> {
    if record.client_id != cx.client.client_id.as_str() {
        return Err(OAuthError::invalid_grant("the refresh token was issued to another client"));
    }
    // RFC 9449 §5: a bound refresh token needs a proof from the same key.
    if let Some(bound) = &record.dpop_jkt
        && cx.dpop_jkt != Some(bound.as_str())
    {
        return Err(OAuthError::new(
            crate::ErrorCode::InvalidDpopProof,
            "the refresh token is bound to another DPoP key",
        ));
    }
    // RFC 8705 §4: so does one bound to a client certificate, over TLS with it.
    if let Some(bound) = &record.x5t_s256
        && !cx.certificate_thumbprint.is_some_and(|presented| constant_time_eq(presented, bound))
    {
        return Err(OAuthError::invalid_grant("the refresh token is bound to another client certificate"));
    }
    let scopes = match &request.scope {
        // RFC 6749 §6: the scope may narrow, never widen.
        Some(requested) => {
            if let Some(extra) = requested.iter().find(|s| !record.scopes.contains(s)) {
                return Err(OAuthError::invalid_scope(format!("scope `{extra}` was not granted")));
            }
            requested.clone()
        }
        None => record.scopes.clone(),
    };
    let audience =
        cx.catalog.grant_user_access(cx.client, Some(&scopes.join(" ")), &record.resources)?.audience;
    Ok((scopes, audience))
}

/// What a rotation issues: new access (and ID) tokens and the successor `next`.
fn issue(record: RefreshRecord, scopes: Vec<String>, audience: Vec<String>, next: Secret) -> Issue {
    Issue {
        subject: record.subject,
        scopes,
        audience,
        user: Some(UserGrant {
            grant_id: record.grant_id,
            auth_time: record.auth_time,
            sid: record.sid,
            nonce: None,
            refresh: RefreshPlan::Rotated(next),
            amr: record.amr,
            acr: record.acr,
        }),
        act: None,
        issued_token_type: None,
        derived_grant: None,
    }
}

impl RefreshToken {
    /// A used (or revoked) refresh token came back. Reuse (RFC 9700 §4.14.2) unless it
    /// is the retry of a rotation whose outcome this server could not tell the client:
    /// the rotation's commit was in doubt (noted by [`InDoubtRotations`]), the retry
    /// comes within [`IN_DOUBT_WINDOW`] from the same client with the same binding, and
    /// the successor is live and unused. Then the answer is that successor, as the lost
    /// response would have carried it; the family stays valid. Any other use revokes it.
    async fn replayed(
        &self,
        cx: &GrantContext<'_>,
        request: &RefreshRequest<'_>,
        presented: &SecretHash,
        grant_id: &GrantId,
    ) -> Result<Issue, OAuthError> {
        if self.in_doubt.is_noted(cx.store.as_ref(), presented, cx.now).await {
            let next = self.successor(request.refresh_token);
            if let Consumed::Fresh(successor) = cx.store.refresh_token(&SecretHash::of(next.expose())).await?
                && successor.grant_id == *grant_id
                && successor.client_id == cx.client.client_id.as_str()
                && cx.now - successor.issued_at <= IN_DOUBT_WINDOW
            {
                let (scopes, audience) = check_use(cx, request, &successor)?;
                info!(client_id = %cx.client.client_id, "retry of an in-doubt refresh rotation: answered from its successor");
                return Ok(issue(successor, scopes, audience, next));
            }
        }
        Err(reuse_detected(cx, grant_id).await)
    }
}

/// How long after a rotation in doubt its retry is answered from the successor.
pub const IN_DOUBT_WINDOW: Timestamp = 60;

/// Rotations this server answered `temporarily_unavailable` though their commit may
/// have happened: kept here (for retries reaching this instance) and, as soon as the
/// store answers again, in the store for [`IN_DOUBT_WINDOW`] (for retries reaching
/// another instance). Keyed by the old token's hash; bounded in memory.
///
/// Code redemptions in doubt are kept by one of their own (`InDoubtRotations<CodesInDoubt>`).
pub struct InDoubtRotations<F = RotationsInDoubt> {
    local: Mutex<HashMap<SecretHash, Timestamp>>,
    notes: PhantomData<fn() -> F>,
}

/// What is kept in the store of a consumption in doubt.
#[derive(Debug, Serialize, Deserialize)]
pub struct InDoubtNote {
    pub noted_at: Timestamp,
}

/// Refresh rotations in doubt, by the old token's hash.
pub struct RotationsInDoubt;

impl Flow for RotationsInDoubt {
    const NAMESPACE: &'static str = "refresh-in-doubt:";
    const NAME: &'static str = "refresh rotation in doubt";
    type Document = InDoubtNote;
}

/// Code redemptions in doubt, by the code's hash.
pub struct CodesInDoubt;

impl Flow for CodesInDoubt {
    const NAMESPACE: &'static str = "code-in-doubt:";
    const NAME: &'static str = "code redemption in doubt";
    type Document = InDoubtNote;
}

impl<F> Default for InDoubtRotations<F> {
    fn default() -> Self {
        Self { local: Mutex::default(), notes: PhantomData }
    }
}

/// Entries beyond which the local list starts over (bounded memory).
const MAX_IN_DOUBT: usize = 10_000;

impl<F: Flow<Document = InDoubtNote> + 'static> InDoubtRotations<F> {
    /// Notes that the rotation of `old` is in doubt, here at once and in the store in
    /// the background (retried until the store answers or the window passes).
    pub fn note(&self, store: Arc<dyn GrantStores>, old: &SecretHash, now: Timestamp) {
        {
            let mut local = self.local.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            local.retain(|_, noted| now - *noted <= IN_DOUBT_WINDOW);
            if local.len() >= MAX_IN_DOUBT {
                local.clear();
            }
            local.insert(*old, now);
        }
        warn!(kind = F::NAME, "consumption in doubt: a retry within the window is let through");
        let id = old.to_base64url();
        let expires_at = now + IN_DOUBT_WINDOW;
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let notes = FlowStore::<F, dyn GrantStores>::new(store.as_ref());
                for _ in 0..IN_DOUBT_WINDOW * 4 {
                    if notes.start(&id, &InDoubtNote { noted_at: now }, expires_at).await.is_ok() {
                        return;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                }
            });
        }
    }

    /// Whether the rotation of `old` was noted in doubt within the window.
    pub(crate) async fn is_noted(&self, store: &dyn GrantStores, old: &SecretHash, now: Timestamp) -> bool {
        let local = self.local.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(old).copied();
        if local.is_some_and(|noted| now - noted <= IN_DOUBT_WINDOW) {
            return true;
        }
        matches!(
            FlowStore::<F, dyn GrantStores>::new(store).read(&old.to_base64url(), now).await,
            Ok(Some(_))
        )
    }
}

/// A used refresh token came back: someone holds a stolen copy. Revoke the family.
async fn reuse_detected(cx: &GrantContext<'_>, grant_id: &GrantId) -> OAuthError {
    warn!(client_id = %cx.client.client_id, "refresh token reused: revoking its grant");
    if let Err(error) = super::revoke_grant(cx, grant_id).await {
        return error;
    }
    OAuthError::invalid_grant("refresh token already used")
}

#[cfg(test)]
mod tests {
    use super::RefreshToken;
    use crate::ErrorCode;
    use crate::grants::testing::{Bench, handed_out, refresh_record, refused, web_client};
    use crate::secret::SecretHash;
    use crate::settings::RefreshExpiration;
    use crate::store::{Consumed, RefreshStore};

    fn grant() -> RefreshToken {
        RefreshToken::new(b"the instances' shared secret")
    }

    async fn bench_with_token(value: &str) -> Bench {
        let bench = Bench::new();
        bench.refresh_token(value, &refresh_record("web", bench.now())).await;
        bench
    }

    #[tokio::test]
    async fn a_rotation_hands_out_a_live_successor_and_uses_the_token_up() {
        let bench = bench_with_token("rt-1").await;
        let issue =
            bench.run(&grant(), &web_client("web"), &[("refresh_token", "rt-1")], None).await.unwrap();
        assert_eq!(issue.subject, "alice");
        assert_eq!(issue.scopes, ["openid", "api1.read", "offline_access"]);
        let next = handed_out(&issue).expect("a successor").clone();
        assert_ne!(next.expose(), "rt-1");
        let stored = bench.store.refresh_token(&SecretHash::of(next.expose())).await.unwrap();
        let Consumed::Fresh(successor) = stored else { panic!("the successor is live: {stored:?}") };
        assert_eq!(
            successor.expires_at,
            refresh_record("web", bench.now()).expires_at,
            "absolute expiry kept"
        );
        let old = bench.store.refresh_token(&SecretHash::of("rt-1")).await.unwrap();
        assert!(matches!(old, Consumed::Replayed { .. }), "{old:?}");
    }

    #[tokio::test]
    async fn a_used_token_coming_back_is_invalid_grant_and_revokes_the_family() {
        let bench = bench_with_token("rt-1").await;
        let grant = grant();
        let issue = bench.run(&grant, &web_client("web"), &[("refresh_token", "rt-1")], None).await.unwrap();
        let successor = handed_out(&issue).unwrap().clone();
        let again = bench.run(&grant, &web_client("web"), &[("refresh_token", "rt-1")], None).await;
        assert_eq!(refused(again), ErrorCode::InvalidGrant);
        assert!(bench.grant_is_revoked("grant-1").await, "RFC 9700 §4.14.2");
        let next =
            bench.run(&grant, &web_client("web"), &[("refresh_token", successor.expose())], None).await;
        assert_eq!(refused(next), ErrorCode::InvalidGrant, "the successor went with its family");
    }

    #[tokio::test]
    async fn successors_are_the_same_on_every_instance_sharing_the_secret_and_differ_per_token() {
        let (one, two) = (grant(), grant());
        assert_eq!(one.successor("rt-1").expose(), two.successor("rt-1").expose());
        assert_ne!(one.successor("rt-1").expose(), one.successor("rt-2").expose());
        let other_secret = RefreshToken::new(b"another deployment");
        assert_ne!(one.successor("rt-1").expose(), other_secret.successor("rt-1").expose());
    }

    #[tokio::test]
    async fn a_token_of_another_client_is_invalid_grant_and_stays_usable_for_its_own() {
        let bench = bench_with_token("rt-1").await;
        let grant = grant();
        let stolen = bench.run(&grant, &web_client("other"), &[("refresh_token", "rt-1")], None).await;
        assert_eq!(refused(stolen), ErrorCode::InvalidGrant);
        bench.run(&grant, &web_client("web"), &[("refresh_token", "rt-1")], None).await.unwrap();
    }

    #[tokio::test]
    async fn scope_may_narrow_but_never_widen() {
        let bench = bench_with_token("rt-1").await;
        let grant = grant();
        let wider = [("refresh_token", "rt-1"), ("scope", "openid api1.write")];
        assert_eq!(
            refused(bench.run(&grant, &web_client("web"), &wider, None).await),
            ErrorCode::InvalidScope
        );
        let narrower = [("refresh_token", "rt-1"), ("scope", "openid")];
        let issue = bench.run(&grant, &web_client("web"), &narrower, None).await.unwrap();
        assert_eq!(issue.scopes, ["openid"]);
        assert!(issue.audience.is_empty());
    }

    #[tokio::test]
    async fn a_token_bound_to_a_dpop_key_needs_a_proof_from_that_key() {
        let bench = Bench::new();
        let bound = crate::store::RefreshRecord {
            dpop_jkt: Some("key-a".into()),
            ..refresh_record("web", bench.now())
        };
        bench.refresh_token("rt-1", &bound).await;
        let grant = grant();
        let params = [("refresh_token", "rt-1")];
        assert_eq!(
            refused(bench.run(&grant, &web_client("web"), &params, None).await),
            ErrorCode::InvalidDpopProof
        );
        let other = bench.run(&grant, &web_client("web"), &params, Some("key-b")).await;
        assert_eq!(refused(other), ErrorCode::InvalidDpopProof);
        bench.run(&grant, &web_client("web"), &params, Some("key-a")).await.unwrap();
    }

    #[tokio::test]
    async fn a_client_without_rotation_keeps_its_token() {
        let bench = bench_with_token("rt-1").await;
        let client = crate::model::Client { refresh_token_rotation: false, ..web_client("web") };
        let grant = grant();
        for _ in 0..2 {
            let issue = bench.run(&grant, &client, &[("refresh_token", "rt-1")], None).await.unwrap();
            assert_eq!(handed_out(&issue).unwrap().expose(), "rt-1");
        }
    }

    #[tokio::test]
    async fn a_sliding_successor_lapses_unused_within_the_absolute_limit() {
        let bench = bench_with_token("rt-1").await;
        let client = crate::model::Client {
            refresh_token_expiration: RefreshExpiration::Sliding,
            sliding_refresh_token_lifetime: 600,
            ..web_client("web")
        };
        let issue = bench.run(&grant(), &client, &[("refresh_token", "rt-1")], None).await.unwrap();
        let next = handed_out(&issue).unwrap();
        let Consumed::Fresh(successor) =
            bench.store.refresh_token(&SecretHash::of(next.expose())).await.unwrap()
        else {
            panic!("the successor is live")
        };
        assert_eq!(successor.idle_expires_at, Some(bench.now() + 600));
    }

    #[tokio::test]
    async fn a_malformed_scope_is_refused_before_the_token_is_touched() {
        let bench = bench_with_token("rt-1").await;
        let grant = grant();
        let malformed = [("refresh_token", "rt-1"), ("scope", "openid \"quoted\"")];
        let result = bench.run(&grant, &web_client("web"), &malformed, None).await;
        assert_eq!(refused(result), ErrorCode::InvalidScope);
        let issue = bench.run(&grant, &web_client("web"), &[("refresh_token", "rt-1")], None).await;
        assert!(issue.is_ok(), "the token was not used up");
    }

    #[tokio::test]
    async fn an_unknown_or_missing_token_is_refused_without_revoking_anything() {
        let bench = bench_with_token("rt-1").await;
        let grant = grant();
        let unknown = bench.run(&grant, &web_client("web"), &[("refresh_token", "rt-x")], None).await;
        assert_eq!(refused(unknown), ErrorCode::InvalidGrant);
        let missing = bench.run(&grant, &web_client("web"), &[], None).await;
        assert_eq!(refused(missing), ErrorCode::InvalidRequest);
        assert!(!bench.grant_is_revoked("grant-1").await);
    }
}
