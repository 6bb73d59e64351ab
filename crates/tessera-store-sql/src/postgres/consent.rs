//! Consent on PostgreSQL: one row per user and client, replaced whole.

use async_trait::async_trait;
use tessera_core::store::{ConsentStore, StoreResult};

use super::PgStore;
use super::rows::{from_json, json};
use crate::store_error;

#[async_trait]
impl ConsentStore for PgStore {
    async fn consented_scopes(&self, subject: &str, client_id: &str) -> StoreResult<Vec<String>> {
        let row = sqlx::query("SELECT scopes FROM consents WHERE subject = $1 AND client_id = $2")
            .bind(subject)
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(row.map(|row| from_json(&row, "scopes")).transpose()?.unwrap_or_default())
    }

    async fn put_consent(&self, subject: &str, client_id: &str, scopes: &[String]) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO consents (subject, client_id, scopes) VALUES ($1, $2, $3) \
             ON CONFLICT (subject, client_id) DO UPDATE SET scopes = excluded.scopes",
        )
        .bind(subject)
        .bind(client_id)
        .bind(json(scopes))
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }
}
