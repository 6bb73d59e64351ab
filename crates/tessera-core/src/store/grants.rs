//! Grants: revoking the family of everything issued from one authorization.

use async_trait::async_trait;

use super::StoreResult;
use crate::Timestamp;
use crate::model::GrantId;

/// Grants: the family of everything issued from one authorization.
#[async_trait]
pub trait GrantStore: Send + Sync {
    /// Revokes the whole family: every refresh token of the grant and its unused codes
    /// now, and its access tokens (which carry their grant) through
    /// `TokenStore::is_revoked`, for which the revocation is remembered until
    /// `remember_until` or the family's last stored artefact expires, whichever is
    /// later. Other grants of the same user or client are untouched.
    async fn revoke_grant(
        &self,
        grant_id: &GrantId,
        now: Timestamp,
        remember_until: Timestamp,
    ) -> StoreResult<()>;
}
