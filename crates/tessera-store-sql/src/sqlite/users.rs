//! User accounts on SQLite; removing one revokes what was issued to it.

use async_trait::async_trait;
use rusqlite::{OptionalExtension as _, Row, params};
use tessera_core::Timestamp;
use tessera_core::model::User;
use tessera_core::store::{Source, StoreResult, UserStore};

use super::grants::revoke_grants_where;
use super::{SqliteStore, factors, from_json, to_json};

/// A user row before its claims are parsed.
struct UserRow {
    username: String,
    subject: String,
    password_hash: String,
    claims: String,
}

impl UserRow {
    /// Reads `username, subject, password_hash, claims`.
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            username: row.get(0)?,
            subject: row.get(1)?,
            password_hash: row.get(2)?,
            claims: row.get(3)?,
        })
    }

    fn into_user(self) -> StoreResult<User> {
        Ok(User {
            subject: self.subject,
            username: self.username,
            password_hash: self.password_hash,
            claims: from_json(&self.claims)?,
        })
    }
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn put_user(&self, user: &User) -> StoreResult<()> {
        let claims = to_json(&user.claims)?;
        let (username, subject, password_hash) =
            (user.username.clone(), user.subject.clone(), user.password_hash.clone());
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO users (username, subject, password_hash, claims) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (username) DO UPDATE SET subject = excluded.subject, \
                 password_hash = excluded.password_hash, claims = excluded.claims",
            )?
            .execute(params![username, subject, password_hash, claims])?;
            Ok(())
        })
        .await?;
        Ok(())
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        let row = self.read(|c| {
            c.prepare_cached(
                "SELECT username, subject, password_hash, claims FROM users WHERE username = ?1",
            )?
            .query_row([username], UserRow::read)
            .optional()
        })?;
        row.map(UserRow::into_user).transpose()
    }

    async fn user_by_subject(&self, subject: &str) -> StoreResult<Option<User>> {
        let row = self.read(|c| {
            c.prepare_cached(
                "SELECT username, subject, password_hash, claims FROM users WHERE subject = ?1 \
                 ORDER BY username LIMIT 1",
            )?
            .query_row([subject], UserRow::read)
            .optional()
        })?;
        row.map(UserRow::into_user).transpose()
    }

    async fn users(&self) -> StoreResult<Vec<User>> {
        let rows = self.read(|c| {
            c.prepare_cached("SELECT username, subject, password_hash, claims FROM users ORDER BY username")?
                .query_map([], UserRow::read)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })?;
        rows.into_iter().map(UserRow::into_user).collect()
    }

    async fn put_user_from(&self, user: &User, source: Source) -> StoreResult<()> {
        let claims = to_json(&user.claims)?;
        let (username, subject, password_hash) =
            (user.username.clone(), user.subject.clone(), user.password_hash.clone());
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO users (username, subject, password_hash, claims, source) \
                 VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (username) DO UPDATE SET subject = excluded.subject, \
                 password_hash = excluded.password_hash, claims = excluded.claims, source = excluded.source",
            )?
            .execute(params![username, subject, password_hash, claims, source.as_str()])?;
            Ok(())
        })
        .await
    }

    async fn user_sources(&self) -> StoreResult<Vec<(String, Source)>> {
        let rows: Vec<(String, String)> = self.read(|c| {
            c.prepare_cached("SELECT username, source FROM users ORDER BY username")?
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect()
        })?;
        rows.into_iter().map(|(name, source)| Ok((name, Source::parse(&source)?))).collect()
    }

    async fn remove_user(&self, username: &str, now: Timestamp) -> StoreResult<Option<User>> {
        let username = username.to_owned();
        let row = self
            .write(move |tx| {
                let Some(row) = tx
                    .prepare_cached(
                        "DELETE FROM users WHERE username = ?1 \
                         RETURNING username, subject, password_hash, claims",
                    )?
                    .query_row([&username], UserRow::read)
                    .optional()?
                else {
                    return Ok(None);
                };
                revoke_grants_where(tx, "subject", &row.subject, now)?;
                tx.prepare_cached("DELETE FROM sessions WHERE json_extract(document, '$.subject') = ?1")?
                    .execute([&row.subject])?;
                tx.prepare_cached("DELETE FROM consents WHERE subject = ?1")?.execute([&row.subject])?;
                factors::delete_factors(tx, &row.subject)?;
                Ok(Some(row))
            })
            .await?;
        row.map(UserRow::into_user).transpose()
    }
}
