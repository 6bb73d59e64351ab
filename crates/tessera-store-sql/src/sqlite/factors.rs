//! Second factors on SQLite: each check-and-use is one statement in the writer's
//! transaction, so racing sign-ins in any process see one winner.

use async_trait::async_trait;
use rusqlite::{OptionalExtension as _, Row, params};
use tessera_core::Timestamp;
use tessera_core::secret::SecretHash;
use tessera_core::store::{FactorStore, PasskeyRecord, StoreResult, TotpFactor};

use super::{SqliteStore, count};

fn passkey_from_row(row: &Row<'_>) -> rusqlite::Result<PasskeyRecord> {
    Ok(PasskeyRecord {
        credential_id: row.get(0)?,
        subject: row.get(1)?,
        name: row.get(2)?,
        credential: row.get(3)?,
        created_at: row.get(4)?,
        last_used_at: row.get(5)?,
    })
}

const PASSKEY_COLUMNS: &str = "credential_id, subject, name, credential, created_at, last_used_at";

#[async_trait]
impl FactorStore for SqliteStore {
    async fn put_totp(&self, subject: &str, factor: &TotpFactor) -> StoreResult<bool> {
        let (subject, factor) = (subject.to_owned(), factor.clone());
        self.write_one(move |c| {
            // An enrolment in progress never replaces a confirmed authenticator.
            let written = c
                .prepare_cached(
                    "INSERT INTO totp_factors (subject, secret, sealed, confirmed, last_step, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                     ON CONFLICT (subject) DO UPDATE SET secret = excluded.secret, sealed = excluded.sealed, \
                     confirmed = excluded.confirmed, last_step = excluded.last_step, \
                     created_at = excluded.created_at \
                     WHERE excluded.confirmed = 1 OR totp_factors.confirmed = 0",
                )?
                .execute(params![
                    subject,
                    factor.secret,
                    i64::from(factor.sealed),
                    i64::from(factor.confirmed),
                    factor.last_step,
                    factor.created_at
                ])?;
            Ok(written == 1)
        })
        .await
    }

    async fn totp(&self, subject: &str) -> StoreResult<Option<TotpFactor>> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT secret, sealed, confirmed, last_step, created_at FROM totp_factors WHERE subject = ?1",
            )?
            .query_row([subject], |row| {
                Ok(TotpFactor {
                    secret: row.get(0)?,
                    sealed: row.get::<_, i64>(1)? != 0,
                    confirmed: row.get::<_, i64>(2)? != 0,
                    last_step: row.get(3)?,
                    created_at: row.get(4)?,
                })
            })
            .optional()
        })
    }

    async fn accept_totp_step(&self, subject: &str, step: i64, pending: bool) -> StoreResult<bool> {
        let subject = subject.to_owned();
        self.write_one(move |c| {
            let accepted = c
                .prepare_cached(
                    "UPDATE totp_factors SET last_step = ?2, confirmed = 1 \
                     WHERE subject = ?1 AND last_step < ?2 AND confirmed = ?3",
                )?
                .execute(params![subject, step, i64::from(!pending)])?;
            Ok(accepted == 1)
        })
        .await
    }

    async fn delete_totp(&self, subject: &str) -> StoreResult<bool> {
        let subject = subject.to_owned();
        self.write_one(move |c| {
            Ok(c.prepare_cached("DELETE FROM totp_factors WHERE subject = ?1")?.execute([subject])? == 1)
        })
        .await
    }

    async fn put_recovery_codes(&self, subject: &str, codes: &[SecretHash]) -> StoreResult<()> {
        let subject = subject.to_owned();
        let codes: Vec<String> = codes.iter().map(SecretHash::to_base64url).collect();
        self.write(move |c| {
            c.prepare_cached("DELETE FROM recovery_codes WHERE subject = ?1")?.execute([&subject])?;
            let mut insert =
                c.prepare_cached("INSERT INTO recovery_codes (subject, code_hash) VALUES (?1, ?2)")?;
            for code in &codes {
                insert.execute(params![subject, code])?;
            }
            Ok(())
        })
        .await
    }

    async fn use_recovery_code(&self, subject: &str, code: &SecretHash) -> StoreResult<bool> {
        let (subject, code) = (subject.to_owned(), code.to_base64url());
        self.write_one(move |c| {
            Ok(c.prepare_cached("DELETE FROM recovery_codes WHERE subject = ?1 AND code_hash = ?2")?
                .execute(params![subject, code])?
                == 1)
        })
        .await
    }

    async fn recovery_codes_left(&self, subject: &str) -> StoreResult<u32> {
        let left = self.read(|c| {
            c.prepare_cached("SELECT COUNT(*) FROM recovery_codes WHERE subject = ?1")?
                .query_row([subject], |row| row.get(0))
        })?;
        Ok(count(left))
    }

    async fn add_passkey(&self, passkey: &PasskeyRecord) -> StoreResult<bool> {
        let passkey = passkey.clone();
        self.write_one(move |c| {
            let added = c
                .prepare_cached(&format!(
                    "INSERT INTO passkeys ({PASSKEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                     ON CONFLICT (credential_id) DO NOTHING"
                ))?
                .execute(params![
                    passkey.credential_id,
                    passkey.subject,
                    passkey.name,
                    passkey.credential,
                    passkey.created_at,
                    passkey.last_used_at
                ])?;
            Ok(added == 1)
        })
        .await
    }

    async fn touch_passkey(
        &self,
        subject: &str,
        credential_id: &str,
        credential: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let (subject, credential_id, credential) =
            (subject.to_owned(), credential_id.to_owned(), credential.to_owned());
        self.write_one(move |c| {
            Ok(c.prepare_cached(
                "UPDATE passkeys SET credential = ?3, last_used_at = ?4 \
                 WHERE credential_id = ?2 AND subject = ?1",
            )?
            .execute(params![subject, credential_id, credential, now])?
                == 1)
        })
        .await
    }

    async fn passkeys(&self, subject: &str) -> StoreResult<Vec<PasskeyRecord>> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE subject = ?1 ORDER BY created_at, credential_id"
            ))?
            .query_map([subject], passkey_from_row)?
            .collect()
        })
    }

    async fn passkey(&self, credential_id: &str) -> StoreResult<Option<PasskeyRecord>> {
        self.read(|c| {
            c.prepare_cached(&format!("SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE credential_id = ?1"))?
                .query_row([credential_id], passkey_from_row)
                .optional()
        })
    }

    async fn delete_passkey(&self, subject: &str, credential_id: &str) -> StoreResult<bool> {
        let (subject, credential_id) = (subject.to_owned(), credential_id.to_owned());
        self.write_one(move |c| {
            Ok(c.prepare_cached("DELETE FROM passkeys WHERE subject = ?1 AND credential_id = ?2")?
                .execute(params![subject, credential_id])?
                == 1)
        })
        .await
    }

    async fn delete_factors(&self, subject: &str) -> StoreResult<bool> {
        let subject = subject.to_owned();
        self.write(move |c| Ok(delete_factors(c, &subject)? > 0)).await
    }
}

/// Deletes every second factor of `subject`; how many rows went.
pub(super) fn delete_factors(c: &rusqlite::Connection, subject: &str) -> rusqlite::Result<usize> {
    let mut removed = 0;
    for table in ["totp_factors", "recovery_codes", "passkeys"] {
        removed +=
            c.prepare_cached(&format!("DELETE FROM {table} WHERE subject = ?1"))?.execute([subject])?;
    }
    Ok(removed)
}
