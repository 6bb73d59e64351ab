//! Remembered consent on SQLite.

use async_trait::async_trait;
use rusqlite::{OptionalExtension as _, params};
use tessera_core::store::{ConsentStore, StoreResult};

use super::{SqliteStore, from_json_opt, to_json};

#[async_trait]
impl ConsentStore for SqliteStore {
    async fn consented_scopes(&self, subject: &str, client_id: &str) -> StoreResult<Vec<String>> {
        let scopes = self.read(|c| {
            c.prepare_cached("SELECT scopes FROM consents WHERE subject = ?1 AND client_id = ?2")?
                .query_row(params![subject, client_id], |row| row.get(0))
                .optional()
        })?;
        Ok(from_json_opt(scopes)?.unwrap_or_default())
    }

    async fn put_consent(&self, subject: &str, client_id: &str, scopes: &[String]) -> StoreResult<()> {
        let scopes = to_json(&scopes)?;
        let (subject, client_id) = (subject.to_owned(), client_id.to_owned());
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO consents (subject, client_id, scopes) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (subject, client_id) DO UPDATE SET scopes = excluded.scopes",
            )?
            .execute(params![subject, client_id, scopes])?;
            Ok(())
        })
        .await
    }
}
