//! Second factors on PostgreSQL: each check-and-use is one statement, so racing
//! sign-ins on any number of instances see one winner.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use tessera_core::Timestamp;
use tessera_core::secret::SecretHash;
use tessera_core::store::{FactorStore, PasskeyRecord, StoreResult, TotpFactor};

use super::rows::{at, get, seconds, seconds_opt};
use super::{PgStore, Transaction};
use crate::store_error;

const PASSKEY_COLUMNS: &str = "credential_id, subject, name, credential, created_at, last_used_at";

fn passkey_from_row(row: &PgRow) -> StoreResult<PasskeyRecord> {
    Ok(PasskeyRecord {
        credential_id: get(row, "credential_id")?,
        subject: get(row, "subject")?,
        name: get(row, "name")?,
        credential: get(row, "credential")?,
        created_at: seconds(row, "created_at")?,
        last_used_at: seconds_opt(row, "last_used_at")?,
    })
}

#[async_trait]
impl FactorStore for PgStore {
    async fn put_totp(&self, subject: &str, factor: &TotpFactor) -> StoreResult<bool> {
        // An enrolment in progress never replaces a confirmed authenticator.
        let written = sqlx::query(
            "INSERT INTO totp_factors (subject, secret, sealed, confirmed, last_step, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (subject) DO UPDATE SET secret = excluded.secret, sealed = excluded.sealed, \
             confirmed = excluded.confirmed, last_step = excluded.last_step, created_at = excluded.created_at \
             WHERE excluded.confirmed OR NOT totp_factors.confirmed",
        )
        .bind(subject)
        .bind(factor.secret.as_slice())
        .bind(factor.sealed)
        .bind(factor.confirmed)
        .bind(factor.last_step)
        .bind(at(factor.created_at))
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(written.rows_affected() == 1)
    }

    async fn totp(&self, subject: &str) -> StoreResult<Option<TotpFactor>> {
        let row = sqlx::query(
            "SELECT secret, sealed, confirmed, last_step, created_at FROM totp_factors WHERE subject = $1",
        )
        .bind(subject)
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        row.map(|row| {
            Ok(TotpFactor {
                secret: get(&row, "secret")?,
                sealed: get(&row, "sealed")?,
                confirmed: get(&row, "confirmed")?,
                last_step: get(&row, "last_step")?,
                created_at: seconds(&row, "created_at")?,
            })
        })
        .transpose()
    }

    async fn accept_totp_step(&self, subject: &str, step: i64, pending: bool) -> StoreResult<bool> {
        let accepted = sqlx::query(
            "UPDATE totp_factors SET last_step = $2, confirmed = true \
             WHERE subject = $1 AND last_step < $2 AND confirmed = $3",
        )
        .bind(subject)
        .bind(step)
        .bind(!pending)
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(accepted.rows_affected() == 1)
    }

    async fn delete_totp(&self, subject: &str) -> StoreResult<bool> {
        let deleted = sqlx::query("DELETE FROM totp_factors WHERE subject = $1")
            .bind(subject)
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(deleted.rows_affected() == 1)
    }

    async fn put_recovery_codes(&self, subject: &str, codes: &[SecretHash]) -> StoreResult<()> {
        let mut lease = self.pool.lease().await.map_err(store_error)?;
        let mut tx = lease.begin().await.map_err(store_error)?;
        sqlx::query("DELETE FROM recovery_codes WHERE subject = $1")
            .bind(subject)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        for code in codes {
            sqlx::query("INSERT INTO recovery_codes (subject, code_hash) VALUES ($1, $2)")
                .bind(subject)
                .bind(code.to_base64url())
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
        }
        tx.commit().await.map_err(store_error)
    }

    async fn use_recovery_code(&self, subject: &str, code: &SecretHash) -> StoreResult<bool> {
        let used = sqlx::query("DELETE FROM recovery_codes WHERE subject = $1 AND code_hash = $2")
            .bind(subject)
            .bind(code.to_base64url())
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(used.rows_affected() == 1)
    }

    async fn recovery_codes_left(&self, subject: &str) -> StoreResult<u32> {
        let row = sqlx::query("SELECT COUNT(*) AS left_count FROM recovery_codes WHERE subject = $1")
            .bind(subject)
            .fetch_one(&self.pool)
            .await
            .map_err(store_error)?;
        let left: i64 = get(&row, "left_count")?;
        Ok(u32::try_from(left.max(0)).unwrap_or(u32::MAX))
    }

    async fn add_passkey(&self, passkey: &PasskeyRecord) -> StoreResult<bool> {
        let added = sqlx::query(
            "INSERT INTO passkeys (credential_id, subject, name, credential, created_at, last_used_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (credential_id) DO NOTHING",
        )
        .bind(&passkey.credential_id)
        .bind(&passkey.subject)
        .bind(&passkey.name)
        .bind(&passkey.credential)
        .bind(at(passkey.created_at))
        .bind(passkey.last_used_at.map(at))
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(added.rows_affected() == 1)
    }

    async fn touch_passkey(
        &self,
        subject: &str,
        credential_id: &str,
        credential: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let touched = sqlx::query(
            "UPDATE passkeys SET credential = $3, last_used_at = $4 \
             WHERE credential_id = $2 AND subject = $1",
        )
        .bind(subject)
        .bind(credential_id)
        .bind(credential)
        .bind(at(now))
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(touched.rows_affected() == 1)
    }

    async fn passkeys(&self, subject: &str) -> StoreResult<Vec<PasskeyRecord>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE subject = $1 ORDER BY created_at, credential_id"
        )))
        .bind(subject)
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.iter().map(passkey_from_row).collect()
    }

    async fn passkey(&self, credential_id: &str) -> StoreResult<Option<PasskeyRecord>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE credential_id = $1"
        )))
        .bind(credential_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        row.as_ref().map(passkey_from_row).transpose()
    }

    async fn delete_passkey(&self, subject: &str, credential_id: &str) -> StoreResult<bool> {
        let deleted = sqlx::query("DELETE FROM passkeys WHERE subject = $1 AND credential_id = $2")
            .bind(subject)
            .bind(credential_id)
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(deleted.rows_affected() == 1)
    }

    async fn delete_factors(&self, subject: &str) -> StoreResult<bool> {
        let mut lease = self.pool.lease().await.map_err(store_error)?;
        let mut tx = lease.begin().await.map_err(store_error)?;
        let removed = delete_factors(&mut tx, subject).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(removed > 0)
    }
}

/// Deletes every second factor of `subject` in `tx`; how many rows went.
pub(super) async fn delete_factors(tx: &mut Transaction<'_>, subject: &str) -> StoreResult<u64> {
    let mut removed = 0;
    for statement in [
        "DELETE FROM totp_factors WHERE subject = $1",
        "DELETE FROM recovery_codes WHERE subject = $1",
        "DELETE FROM passkeys WHERE subject = $1",
    ] {
        removed += sqlx::query(statement)
            .bind(subject)
            .execute(&mut **tx)
            .await
            .map_err(store_error)?
            .rows_affected();
    }
    Ok(removed)
}
