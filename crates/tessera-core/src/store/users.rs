//! Local user accounts.

use async_trait::async_trait;

use super::{Source, StoreResult};
use crate::Timestamp;
use crate::model::User;

/// Local user accounts.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Inserts a user, or replaces the one with the same username.
    async fn put_user(&self, user: &User) -> StoreResult<()>;
    /// The user with this username.
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>>;
    /// The user with this subject (`sub`).
    async fn user_by_subject(&self, subject: &str) -> StoreResult<Option<User>>;
    /// Every user, ordered by username.
    async fn users(&self) -> StoreResult<Vec<User>>;
    /// Inserts or replaces the user with this username, recording `source` as where it
    /// now comes from ([`put_user`](Self::put_user) inserts `Cli` and keeps the source
    /// of a user it replaces).
    async fn put_user_from(&self, user: &User, source: Source) -> StoreResult<()>;
    /// Every user's username and source, ordered by username.
    async fn user_sources(&self) -> StoreResult<Vec<(String, Source)>>;
    /// Deletes the user and, in the same step, makes everything issued to it unusable:
    /// the grants of its stored refresh tokens and codes are revoked, its sessions,
    /// consents and second factors deleted. Returns the removed user; `None` when unknown.
    async fn remove_user(&self, username: &str, now: Timestamp) -> StoreResult<Option<User>>;
}
