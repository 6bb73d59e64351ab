//! JSON columns: documents and lists stored as text.

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::Row as _;
use sqlx::any::AnyRow;
use tessera_core::store::{StoreError, StoreResult};

/// Serializes a value for a JSON text column.
pub(crate) fn to_json(value: &impl Serialize) -> StoreResult<String> {
    serde_json::to_string(value).map_err(StoreError::new)
}

/// Reads a JSON text column.
pub(crate) fn from_json<T: DeserializeOwned>(row: &AnyRow, column: &str) -> StoreResult<T> {
    let text: String = row.try_get(column).map_err(StoreError::new)?;
    serde_json::from_str(&text).map_err(StoreError::new)
}
