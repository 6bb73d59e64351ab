//! PostgreSQL's column types as the store traits see them: `JSONB` documents,
//! `TIMESTAMPTZ` times (the traits count unix seconds), `BOOLEAN` flags.

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::Row as _;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::types::time::OffsetDateTime;
use tessera_core::Timestamp;
use tessera_core::store::StoreResult;

use crate::store_error;

/// A value for a `JSONB` parameter.
pub(crate) fn json<T: Serialize + ?Sized>(value: &T) -> Json<&T> {
    Json(value)
}

/// Reads a `JSONB` column.
pub(crate) fn from_json<T: DeserializeOwned>(row: &PgRow, column: &str) -> StoreResult<T> {
    let Json(value) = row.try_get::<Json<T>, _>(column).map_err(store_error)?;
    Ok(value)
}

/// A `TIMESTAMPTZ` parameter for unix seconds. Seconds outside the years 1 to 9999
/// (which no time Tessera stores comes near) are held at the nearer end.
pub(crate) fn at(seconds: Timestamp) -> OffsetDateTime {
    let clamped = seconds.clamp(MIN_UNIX, MAX_UNIX);
    OffsetDateTime::from_unix_timestamp(clamped).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The unix seconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the range
/// `time` represents.
const MIN_UNIX: i64 = -62_135_596_800;
const MAX_UNIX: i64 = 253_402_300_799;

/// Reads a `TIMESTAMPTZ` column as unix seconds.
pub(crate) fn seconds(row: &PgRow, column: &str) -> StoreResult<Timestamp> {
    let time: OffsetDateTime = row.try_get(column).map_err(store_error)?;
    Ok(time.unix_timestamp())
}

/// Reads a nullable `TIMESTAMPTZ` column as unix seconds.
pub(crate) fn seconds_opt(row: &PgRow, column: &str) -> StoreResult<Option<Timestamp>> {
    let time: Option<OffsetDateTime> = row.try_get(column).map_err(store_error)?;
    Ok(time.map(OffsetDateTime::unix_timestamp))
}

/// Reads any other column.
pub(crate) fn get<'r, T>(row: &'r PgRow, column: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(column).map_err(store_error)
}

/// A counter column as the traits' `u32`, saturating (it only guards a threshold).
pub(crate) fn count(row: &PgRow, column: &str) -> StoreResult<u32> {
    let n: i64 = get(row, column)?;
    Ok(u32::try_from(n.max(0)).unwrap_or(u32::MAX))
}
