//! `authorization_code` grant (RFC 6749 §4.1.3, OAuth 2.1 §4.1.3) with PKCE (RFC 7636).

use async_trait::async_trait;
use tracing::{info, warn};

use super::refresh_token::{CodesInDoubt, IN_DOUBT_WINDOW, InDoubtRotations};
use super::{GrantContext, GrantFacts, GrantHandler, Issue, UserGrant, first_refresh};
use crate::model::{GrantId, GrantType};
use crate::request::Params;
use crate::secret::{Secret, SecretHash};
use crate::store::{CodeMismatch, CodePresentation, Consumed, PendingGrant};
use crate::{ErrorCode, OAuthError, pkce};

/// RFC 6749 §4.1.3 and RFC 7636 §4.5: the token request, parsed before the code is
/// looked up; a malformed one touches nothing.
struct CodeRequest<'p> {
    code: &'p str,
    verifier: &'p str,
    /// Sent when the authorization request carried one; then it must be the same.
    redirect_uri: Option<&'p str>,
}

impl<'p> CodeRequest<'p> {
    fn parse(params: &'p Params) -> Result<Self, OAuthError> {
        let code = params.require("code")?;
        let verifier = params.require("code_verifier")?;
        if !pkce::is_well_formed(verifier) {
            return Err(OAuthError::invalid_request("code_verifier must be 43-128 unreserved characters"));
        }
        Ok(Self { code, verifier, redirect_uri: params.get("redirect_uri") })
    }
}

/// Redeems a code for tokens.
#[derive(Default)]
pub struct AuthorizationCode {
    /// Redemptions answered `temporarily_unavailable` whose commit was in doubt.
    in_doubt: InDoubtRotations<CodesInDoubt>,
}

#[async_trait]
impl GrantHandler for AuthorizationCode {
    fn grant_type(&self) -> GrantType {
        GrantType::AuthorizationCode
    }

    async fn handle(&self, cx: &GrantContext<'_>, params: &Params) -> Result<Issue, OAuthError> {
        let CodeRequest { code, verifier, redirect_uri } = CodeRequest::parse(params)?;
        let store = cx.store;
        // The binding is checked inside the store's redemption: a request that does not
        // match (RFC 6749 §4.1.3, RFC 7636 §4.6, RFC 9449 §10) leaves the code unused.
        let presented = CodePresentation {
            client_id: cx.client.client_id.clone(),
            redirect_uri: redirect_uri.map(str::to_owned),
            code_verifier: Secret::new(verifier),
            dpop_jkt: cx.dpop_jkt.map(str::to_owned),
        };
        let code_hash = SecretHash::of(code);
        let redeemed = match store.redeem_code(&code_hash, &presented, cx.now).await {
            Ok(redeemed) => redeemed,
            Err(error) => {
                if error.is_in_doubt() {
                    // The store could not tell whether this redemption committed: let
                    // one retry of it through rather than revoke the grant (see
                    // `retry_in_doubt`).
                    self.in_doubt.note(store.clone(), &code_hash, cx.now);
                }
                return Err(error.into());
            }
        };
        let grant = match redeemed {
            Ok(Consumed::Fresh(grant)) => grant,
            Ok(Consumed::Replayed { grant_id }) => {
                match self.retry_in_doubt(cx, &code_hash, &presented, &grant_id).await? {
                    Some(grant) => grant,
                    None => {
                        // RFC 6749 §4.1.2: a code used twice revokes what was issued from it.
                        warn!(client_id = %cx.client.client_id, "authorization code reused: revoking its grant");
                        super::revoke_grant(cx, &grant_id).await?;
                        return Err(OAuthError::invalid_grant("authorization code already used"));
                    }
                }
            }
            Ok(Consumed::Missing) => {
                return Err(OAuthError::invalid_grant("unknown or expired authorization code"));
            }
            Err(mismatch) => {
                info!(client_id = %cx.client.client_id, ?mismatch, "code redemption refused; the code stays unused");
                return Err(refusal(mismatch));
            }
        };
        let audience = cx
            .catalog
            .grant_user_access(cx.client, Some(&grant.scopes.join(" ")), &grant.resources)?
            .audience;
        let refresh = first_refresh(
            cx,
            &GrantFacts {
                grant_id: &grant.grant_id,
                subject: &grant.subject,
                scopes: &grant.scopes,
                resources: &grant.resources,
                auth_time: grant.auth_time,
                sid: &grant.sid,
                amr: &grant.amr,
                acr: grant.acr.as_deref(),
            },
        );
        Ok(Issue {
            subject: grant.subject,
            scopes: grant.scopes,
            audience,
            user: Some(UserGrant {
                grant_id: grant.grant_id,
                auth_time: grant.auth_time,
                sid: grant.sid,
                nonce: grant.nonce,
                refresh,
                amr: grant.amr,
                acr: grant.acr,
            }),
            act: None,
            issued_token_type: None,
            derived_grant: None,
        })
    }
}

impl AuthorizationCode {
    /// A used code came back. When its redemption was answered `temporarily_unavailable`
    /// with its commit in doubt (noted within [`IN_DOUBT_WINDOW`]), the first retry that
    /// matches the code's binding (client, `redirect_uri`, verifier, DPoP key) is answered
    /// as the redemption the client never heard of: claimed once, atomically, in the store,
    /// so of any number of retries on any instance exactly one gets tokens. `None`: reuse.
    /// Only reached on a replay, so the normal redemption costs nothing more.
    async fn retry_in_doubt(
        &self,
        cx: &GrantContext<'_>,
        code_hash: &SecretHash,
        presented: &CodePresentation,
        grant_id: &GrantId,
    ) -> Result<Option<PendingGrant>, OAuthError> {
        let store = cx.store.as_ref();
        if !self.in_doubt.is_noted(store, code_hash, cx.now).await {
            return Ok(None);
        }
        let Some(grant) = store.redeemed_code(code_hash, cx.now).await? else { return Ok(None) };
        if grant.grant_id != *grant_id || grant.mismatch(presented).is_some() {
            return Ok(None);
        }
        let claim = format!("code-in-doubt-claimed:{}", code_hash.to_base64url());
        if !store.remember_once(&claim, cx.now + IN_DOUBT_WINDOW, cx.now).await? {
            return Ok(None);
        }
        info!(client_id = %cx.client.client_id, "retry of an in-doubt code redemption: answered once");
        Ok(Some(grant))
    }
}

/// The error for a request that does not match the code's binding.
fn refusal(mismatch: CodeMismatch) -> OAuthError {
    match mismatch {
        CodeMismatch::Client => OAuthError::invalid_grant("the code was issued to another client"),
        CodeMismatch::RedirectUri => {
            OAuthError::invalid_grant("redirect_uri does not match the authorization request")
        }
        CodeMismatch::CodeVerifier => {
            OAuthError::invalid_grant("code_verifier does not match the code_challenge")
        }
        CodeMismatch::DpopKey => {
            OAuthError::new(ErrorCode::InvalidDpopProof, "the code is bound to another DPoP key")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AuthorizationCode;
    use crate::ErrorCode;
    use crate::grants::RefreshPlan;
    use crate::grants::testing::{Bench, REFRESH_LIFETIME, pending_grant, refused, web_client};
    use crate::store::PendingGrant;

    const VERIFIER: &str = "a-verifier-of-forty-three-characters-or-more-0123";

    fn redeem(code: &str, verifier: &str) -> Vec<(&'static str, String)> {
        vec![
            ("code", code.to_owned()),
            ("code_verifier", verifier.to_owned()),
            ("redirect_uri", "https://app.example/cb".to_owned()),
        ]
    }

    async fn run(
        bench: &Bench,
        grant: &AuthorizationCode,
        client_id: &str,
        params: &[(&'static str, String)],
        proof: Option<&str>,
    ) -> Result<crate::grants::Issue, crate::OAuthError> {
        let params: Vec<(&str, &str)> = params.iter().map(|(n, v)| (*n, v.as_str())).collect();
        bench.run(grant, &web_client(client_id), &params, proof).await
    }

    async fn bench_with_code(grant: PendingGrant) -> Bench {
        let bench = Bench::new();
        bench.code("the-code", &grant).await;
        bench
    }

    #[tokio::test]
    async fn a_code_with_its_verifier_gives_the_users_grant_with_a_first_refresh_token() {
        let bench = bench_with_code(pending_grant("web", VERIFIER)).await;
        let issue = run(&bench, &AuthorizationCode::default(), "web", &redeem("the-code", VERIFIER), None)
            .await
            .unwrap();
        assert_eq!(issue.subject, "alice");
        assert_eq!(issue.audience, ["api1"]);
        let user = issue.user.expect("a user grant");
        assert_eq!((user.grant_id.as_str(), user.sid.as_str()), ("grant-1", "sid-1"));
        assert_eq!(user.nonce.as_deref(), Some("n-1"));
        assert_eq!(user.amr, ["pwd"]);
        let RefreshPlan::Start(record) = user.refresh else { panic!("offline_access gives a refresh token") };
        assert_eq!(record.expires_at, bench.now() + REFRESH_LIFETIME);
        assert_eq!(record.client_id, "web");
    }

    #[tokio::test]
    async fn without_offline_access_no_refresh_token_is_started() {
        let mut grant = pending_grant("web", VERIFIER);
        grant.scopes.retain(|scope| scope != "offline_access");
        let bench = bench_with_code(grant).await;
        let issue = run(&bench, &AuthorizationCode::default(), "web", &redeem("the-code", VERIFIER), None)
            .await
            .unwrap();
        assert_eq!(issue.user.unwrap().refresh, RefreshPlan::None);
    }

    #[tokio::test]
    async fn a_second_use_of_a_code_is_invalid_grant_and_revokes_its_grant() {
        let bench = bench_with_code(pending_grant("web", VERIFIER)).await;
        let grant = AuthorizationCode::default();
        run(&bench, &grant, "web", &redeem("the-code", VERIFIER), None).await.unwrap();
        assert!(!bench.grant_is_revoked("grant-1").await);
        let again = run(&bench, &grant, "web", &redeem("the-code", VERIFIER), None).await;
        assert_eq!(refused(again), ErrorCode::InvalidGrant);
        assert!(bench.grant_is_revoked("grant-1").await, "RFC 6749 §4.1.2: reuse revokes the grant");
    }

    #[tokio::test]
    async fn a_wrong_verifier_is_invalid_grant_and_leaves_the_code_for_its_client() {
        let bench = bench_with_code(pending_grant("web", VERIFIER)).await;
        let grant = AuthorizationCode::default();
        let wrong = "another-verifier-of-forty-three-characters-0123456";
        assert_eq!(
            refused(run(&bench, &grant, "web", &redeem("the-code", wrong), None).await),
            ErrorCode::InvalidGrant
        );
        run(&bench, &grant, "web", &redeem("the-code", VERIFIER), None).await.unwrap();
        assert!(!bench.grant_is_revoked("grant-1").await);
    }

    #[tokio::test]
    async fn a_code_presented_by_another_client_is_invalid_grant_and_stays_usable() {
        let bench = bench_with_code(pending_grant("web", VERIFIER)).await;
        let grant = AuthorizationCode::default();
        let other = run(&bench, &grant, "other", &redeem("the-code", VERIFIER), None).await;
        assert_eq!(refused(other), ErrorCode::InvalidGrant);
        run(&bench, &grant, "web", &redeem("the-code", VERIFIER), None).await.unwrap();
    }

    #[tokio::test]
    async fn a_redirect_uri_other_than_the_requests_is_invalid_grant() {
        let bench = bench_with_code(pending_grant("web", VERIFIER)).await;
        let mut params = redeem("the-code", VERIFIER);
        params[2].1 = "https://evil.example/cb".into();
        let result = run(&bench, &AuthorizationCode::default(), "web", &params, None).await;
        assert_eq!(refused(result), ErrorCode::InvalidGrant);
    }

    #[tokio::test]
    async fn a_malformed_or_missing_verifier_is_invalid_request() {
        let bench = bench_with_code(pending_grant("web", VERIFIER)).await;
        let grant = AuthorizationCode::default();
        let short = run(&bench, &grant, "web", &redeem("the-code", "short"), None).await;
        assert_eq!(refused(short), ErrorCode::InvalidRequest);
        let missing = run(&bench, &grant, "web", &[("code", "the-code".to_owned())], None).await;
        assert_eq!(refused(missing), ErrorCode::InvalidRequest);
        run(&bench, &grant, "web", &redeem("the-code", VERIFIER), None).await.unwrap();
    }

    #[tokio::test]
    async fn an_expired_or_unknown_code_is_invalid_grant() {
        let bench = bench_with_code(pending_grant("web", VERIFIER)).await;
        let grant = AuthorizationCode::default();
        let unknown = run(&bench, &grant, "web", &redeem("no-such-code", VERIFIER), None).await;
        assert_eq!(refused(unknown), ErrorCode::InvalidGrant);
        bench.clock.advance(61);
        let expired = run(&bench, &grant, "web", &redeem("the-code", VERIFIER), None).await;
        assert_eq!(refused(expired), ErrorCode::InvalidGrant);
    }

    #[tokio::test]
    async fn a_code_bound_to_a_dpop_key_needs_a_proof_from_that_key() {
        let mut bound = pending_grant("web", VERIFIER);
        bound.dpop_jkt = Some("key-a".into());
        let bench = bench_with_code(bound).await;
        let grant = AuthorizationCode::default();
        let other_key = run(&bench, &grant, "web", &redeem("the-code", VERIFIER), Some("key-b")).await;
        assert_eq!(refused(other_key), ErrorCode::InvalidDpopProof);
        let no_proof = run(&bench, &grant, "web", &redeem("the-code", VERIFIER), None).await;
        assert_eq!(refused(no_proof), ErrorCode::InvalidDpopProof);
        run(&bench, &grant, "web", &redeem("the-code", VERIFIER), Some("key-a")).await.unwrap();
    }
}
