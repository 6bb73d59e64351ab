//! Users on PostgreSQL. Removing one ends everything of theirs in one transaction.

use async_trait::async_trait;
use sqlx::Row as _;
use sqlx::postgres::PgRow;
use tessera_core::Timestamp;
use tessera_core::model::User;
use tessera_core::store::{Source, StoreResult, UserStore};

use super::rows::{from_json, get, json};
use super::{PgStore, factors, grants};
use crate::store_error;

fn user_from_row(row: &PgRow) -> StoreResult<User> {
    Ok(User {
        subject: get(row, "subject")?,
        username: get(row, "username")?,
        password_hash: get(row, "password_hash")?,
        claims: from_json(row, "claims")?,
    })
}

#[async_trait]
impl UserStore for PgStore {
    async fn put_user(&self, user: &User) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO users (username, subject, password_hash, claims) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (username) DO UPDATE SET subject = excluded.subject, \
             password_hash = excluded.password_hash, claims = excluded.claims",
        )
        .bind(&user.username)
        .bind(&user.subject)
        .bind(&user.password_hash)
        .bind(json(&user.claims))
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        let row =
            sqlx::query("SELECT username, subject, password_hash, claims FROM users WHERE username = $1")
                .bind(username)
                .fetch_optional(&self.pool)
                .await
                .map_err(store_error)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn user_by_subject(&self, subject: &str) -> StoreResult<Option<User>> {
        let row = sqlx::query(
            "SELECT username, subject, password_hash, claims FROM users WHERE subject = $1 \
             ORDER BY username LIMIT 1",
        )
        .bind(subject)
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn users(&self) -> StoreResult<Vec<User>> {
        let rows =
            sqlx::query("SELECT username, subject, password_hash, claims FROM users ORDER BY username")
                .fetch_all(&self.pool)
                .await
                .map_err(store_error)?;
        rows.iter().map(user_from_row).collect()
    }

    async fn put_user_from(&self, user: &User, source: Source) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO users (username, subject, password_hash, claims, source) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (username) DO UPDATE SET subject = excluded.subject, \
             password_hash = excluded.password_hash, claims = excluded.claims, source = excluded.source",
        )
        .bind(&user.username)
        .bind(&user.subject)
        .bind(&user.password_hash)
        .bind(json(&user.claims))
        .bind(source.as_str())
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn user_sources(&self) -> StoreResult<Vec<(String, Source)>> {
        let rows = sqlx::query("SELECT username, source FROM users ORDER BY username")
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        rows.iter()
            .map(|row| {
                let name: String = row.try_get("username").map_err(store_error)?;
                let source: String = row.try_get("source").map_err(store_error)?;
                Ok((name, Source::parse(&source)?))
            })
            .collect()
    }

    async fn remove_user(&self, username: &str, now: Timestamp) -> StoreResult<Option<User>> {
        let mut lease = self.pool.lease().await.map_err(store_error)?;
        let mut tx = lease.begin().await.map_err(store_error)?;
        let row = sqlx::query(
            "DELETE FROM users WHERE username = $1 RETURNING username, subject, password_hash, claims",
        )
        .bind(username)
        .fetch_optional(&mut *tx)
        .await
        .map_err(store_error)?;
        let Some(user) = row.as_ref().map(user_from_row).transpose()? else {
            return Ok(None);
        };
        grants::revoke_grants_where(&mut tx, "subject", &user.subject, now).await?;
        sqlx::query("DELETE FROM sessions WHERE document ->> 'subject' = $1")
            .bind(&user.subject)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        sqlx::query("DELETE FROM consents WHERE subject = $1")
            .bind(&user.subject)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        factors::delete_factors(&mut tx, &user.subject).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(Some(user))
    }
}
