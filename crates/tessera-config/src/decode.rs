//! Turning TOML tables into the raw serde structs, collecting every error instead of
//! stopping at the first, plus the value types the file uses (durations, RFC 3339 times).
//!
//! The raw structs, the overrides and [`Cx`] derive no `Debug`: they hold plain secrets.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::de::{DeserializeOwned, Visitor};
use serde::{Deserialize, Deserializer};

use crate::env::Override;
use crate::error::ConfigError;

/// Unknown keys of a table, captured with `#[serde(flatten)]` and reported one by one.
pub(crate) type Unknown = BTreeMap<String, toml::Value>;

/// Where a table sits in the file: how errors name it and where overrides address it.
#[derive(Debug, Clone)]
pub(crate) struct Place {
    /// `[tokens]`, `[clients] client_id="web-app"`; empty for the top level.
    pub label: String,
    /// Put before every key: `client_secrets[0].` for an entry inside a client.
    pub key_prefix: String,
    /// The path environment overrides use (`["clients", "0"]`).
    pub env_path: Vec<String>,
}

impl Place {
    /// The top level of the file.
    pub fn root() -> Self {
        Self { label: String::new(), key_prefix: String::new(), env_path: Vec::new() }
    }

    /// A `[section]` table.
    pub fn section(name: &str) -> Self {
        Self { label: format!("[{name}]"), key_prefix: String::new(), env_path: vec![name.to_owned()] }
    }

    /// A table inside a section (`[server.tls]`).
    pub fn subsection(section: &str, name: &str) -> Self {
        Self {
            label: format!("[{section}.{name}]"),
            key_prefix: String::new(),
            env_path: vec![section.to_owned(), name.to_owned()],
        }
    }

    /// Entry `index` of an array of tables, named by its identifying key when it has one.
    pub fn entry(array: &str, index: usize, id_key: &str, table: &toml::Table) -> Self {
        let label = match table.get(id_key).and_then(toml::Value::as_str) {
            Some(id) => format!("[{array}] {id_key}={id:?}"),
            None => format!("[{array}] #{}", index + 1),
        };
        Self { label, key_prefix: String::new(), env_path: vec![array.to_owned(), index.to_string()] }
    }

    /// A table held in `key` of this one (`token_exchange`), or in entry `index` of the
    /// array `key` (`client_secrets[1]`); errors keep this table's label.
    pub fn inner(&self, key: &str, index: Option<usize>) -> Self {
        let mut key_prefix = format!("{}{key}", self.key_prefix);
        let mut env_path = self.env_path.clone();
        env_path.push(key.to_owned());
        if let Some(index) = index {
            let _ = write!(key_prefix, "[{index}]");
            env_path.push(index.to_string());
        }
        key_prefix.push('.');
        Self { label: self.label.clone(), key_prefix, env_path }
    }

    /// `key` as errors show it.
    pub fn key(&self, key: &str) -> String {
        format!("{}{key}", self.key_prefix)
    }

    /// The key naming this whole table when it sits inside another (`client_secrets[1]`).
    pub fn whole(&self) -> String {
        self.key_prefix.trim_end_matches('.').to_owned()
    }
}

/// Everything checking needs to carry around: the errors so far and the overrides applied.
pub(crate) struct Cx {
    file: String,
    pub errors: Vec<ConfigError>,
    overrides: Vec<Override>,
    /// Keys dropped for having the wrong type, as (table label, key): a check that then
    /// finds them missing would only repeat the error.
    dropped: Vec<(String, String)>,
    /// What is allowed but weak: logged at every start.
    pub warnings: Vec<ConfigError>,
}

/// A step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Stops a table that keeps failing from looping; far more keys than any table has.
const MAX_ATTEMPTS: usize = 200;

impl Cx {
    /// A context for `file`, with the overrides already applied to it.
    pub fn new(file: &str, errors: Vec<ConfigError>, overrides: Vec<Override>) -> Self {
        Self { file: file.to_owned(), errors, overrides, dropped: Vec::new(), warnings: Vec::new() }
    }

    /// Records an error about `key` of the table at `place`.
    /// Records a warning about `key` of `place`: accepted, but said at every start.
    #[allow(dead_code, reason = "no rule warns since value secrets are argon2id; kept for the next one")]
    pub fn warning(&mut self, place: &Place, key: &str, message: impl Into<String>) {
        let key = if key.is_empty() { place.whole() } else { place.key(key) };
        self.warnings.push(ConfigError {
            file: self.file.clone(),
            table: place.label.clone(),
            key,
            message: message.into(),
        });
    }

    pub fn error(&mut self, place: &Place, key: &str, message: impl Into<String>) {
        let key = if key.is_empty() { place.whole() } else { place.key(key) };
        let follows = |(label, dropped): &(String, String)| {
            *label == place.label
                && dropped
                    .strip_prefix(key.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
        };
        if self.dropped.iter().any(follows) {
            return;
        }
        self.errors.push(ConfigError {
            file: self.file.clone(),
            table: place.label.clone(),
            key,
            message: message.into(),
        });
    }

    /// Reports each key serde did not know.
    pub fn unknown(&mut self, place: &Place, unknown: &Unknown) {
        for key in unknown.keys() {
            self.error(place, key, "unknown key");
        }
    }

    /// Deserializes `table` into `T`. A key serde rejects is reported (with its path, via
    /// `serde_path_to_error`) and dropped, and decoding starts again: one wrong type must
    /// not hide the errors in the rest of the table. `T` defaults every field, so dropping
    /// keys always ends in a value.
    pub fn decode<T: DeserializeOwned>(&mut self, place: &Place, table: toml::Table) -> Option<T> {
        let mut value = toml::Value::Table(table);
        // Array elements dropped so far, by array path, as indices in the original array.
        let mut dropped: Vec<(Vec<Step>, usize)> = Vec::new();
        for _ in 0..MAX_ATTEMPTS {
            let error = match serde_path_to_error::deserialize::<_, T>(value.clone()) {
                Ok(decoded) => return Some(decoded),
                Err(error) => error,
            };
            let steps = steps(error.path());
            let original = original_steps(&steps, &dropped);
            let mut env_path = place.env_path.clone();
            env_path.extend(original.iter().map(|step| match step {
                Step::Key(key) => key.clone(),
                Step::Index(index) => index.to_string(),
            }));
            let from_env = self.overrides.iter_mut().find(|o| o.path == env_path);
            if let Some(from_env) = from_env.filter(|o| o.typed && !o.retried) {
                // `TESSERA__…=12345` read as a number; the key wants text, so take it as text.
                from_env.retried = true;
                let raw = toml::Value::String(from_env.raw.clone());
                if replace(&mut value, &steps, raw) {
                    continue;
                }
            }
            let mut message = error.inner().message().to_owned();
            if let Some(from_env) = self.overrides.iter().find(|o| o.path == env_path) {
                let _ = write!(message, " (set by {})", from_env.var);
            }
            let key = render(&original);
            self.error(place, &key, message);
            self.dropped.push((place.label.clone(), place.key(&key)));
            if steps.is_empty() || !remove(&mut value, &steps) {
                return None;
            }
            if let Some((Step::Index(index), parent)) = original.split_last() {
                dropped.push((parent.to_vec(), *index));
            }
        }
        None
    }
}

fn steps(path: &serde_path_to_error::Path) -> Vec<Step> {
    let mut steps = Vec::new();
    for segment in path.iter() {
        match segment {
            serde_path_to_error::Segment::Map { key } => steps.push(Step::Key(key.clone())),
            serde_path_to_error::Segment::Seq { index } => steps.push(Step::Index(*index)),
            serde_path_to_error::Segment::Enum { .. } | serde_path_to_error::Segment::Unknown => break,
        }
    }
    steps
}

/// `steps` with a final array index mapped back to the index the file has, before
/// earlier bad elements of the same array were dropped.
fn original_steps(steps: &[Step], dropped: &[(Vec<Step>, usize)]) -> Vec<Step> {
    let mut original = steps.to_vec();
    if let Some((Step::Index(current), parent)) = steps.split_last() {
        let mut removed: Vec<usize> =
            dropped.iter().filter(|(array, _)| array == parent).map(|(_, index)| *index).collect();
        removed.sort_unstable();
        let mut index = *current;
        for earlier in removed {
            if earlier <= index {
                index += 1;
            }
        }
        if let Some(last) = original.last_mut() {
            *last = Step::Index(index);
        }
    }
    original
}

fn render(steps: &[Step]) -> String {
    let mut out = String::new();
    for step in steps {
        match step {
            Step::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Step::Index(index) => {
                let _ = write!(out, "[{index}]");
            }
        }
    }
    out
}

/// The container holding the last step of `steps`, or `None` when the path does not exist.
fn parent_mut<'a>(value: &'a mut toml::Value, steps: &[Step]) -> Option<&'a mut toml::Value> {
    let mut node = value;
    for step in steps {
        node = match (step, node) {
            (Step::Key(key), toml::Value::Table(table)) => table.get_mut(key)?,
            (Step::Index(index), toml::Value::Array(items)) => items.get_mut(*index)?,
            _ => return None,
        };
    }
    Some(node)
}

fn remove(value: &mut toml::Value, steps: &[Step]) -> bool {
    let Some((last, parent)) = steps.split_last() else { return false };
    match (last, parent_mut(value, parent)) {
        (Step::Key(key), Some(toml::Value::Table(table))) => table.remove(key).is_some(),
        (Step::Index(index), Some(toml::Value::Array(items))) if *index < items.len() => {
            items.remove(*index);
            true
        }
        _ => false,
    }
}

fn replace(value: &mut toml::Value, steps: &[Step], new: toml::Value) -> bool {
    match parent_mut(value, steps) {
        Some(node) => {
            *node = new;
            true
        }
        None => false,
    }
}

/// A duration in whole seconds, written as `"90s"`, `"10m"`, `"1h"`, `"30d"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seconds(pub i64);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SecondsVisitor;

        impl Visitor<'_> for SecondsVisitor {
            type Value = Seconds;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a duration such as \"90s\", \"10m\", \"1h\" or \"30d\"")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Seconds, E> {
                parse_duration(text).map(Seconds).map_err(E::custom)
            }
        }

        deserializer.deserialize_str(SecondsVisitor)
    }
}

/// Parses a human-readable duration into whole seconds.
pub(crate) fn parse_duration(text: &str) -> Result<i64, String> {
    let duration = humantime::parse_duration(text.trim()).map_err(|error| {
        format!("`{text}` is not a duration ({error}); write e.g. \"90s\", \"10m\", \"1h\" or \"30d\"")
    })?;
    if duration.subsec_nanos() != 0 {
        return Err(format!("`{text}` is not a whole number of seconds"));
    }
    i64::try_from(duration.as_secs()).map_err(|_| format!("`{text}` is too long"))
}

/// A number of seconds the way the file writes durations, for messages.
pub(crate) fn human(seconds: i64) -> String {
    let seconds = u64::try_from(seconds).unwrap_or(0);
    humantime::format_duration(std::time::Duration::from_secs(seconds)).to_string()
}

/// An RFC 3339 time (a string, or a TOML offset date-time) as Unix seconds.
pub(crate) fn unix_time(value: &toml::Value) -> Result<i64, String> {
    let datetime = match value {
        toml::Value::String(text) => text
            .parse::<toml::value::Datetime>()
            .map_err(|_| format!("`{text}` is not an RFC 3339 time such as \"2026-01-31T00:00:00Z\""))?,
        toml::Value::Datetime(datetime) => *datetime,
        other => return Err(format!("expected an RFC 3339 time, found a {}", other.type_str())),
    };
    let (Some(date), Some(time), Some(offset)) = (datetime.date, datetime.time, datetime.offset) else {
        return Err(format!(
            "`{datetime}` needs a date, a time and an offset (RFC 3339), e.g. 2026-01-31T00:00:00Z"
        ));
    };
    let days = days_from_civil(i64::from(date.year), i64::from(date.month), i64::from(date.day));
    let seconds =
        days * 86_400 + i64::from(time.hour) * 3_600 + i64::from(time.minute) * 60 + i64::from(time.second);
    let offset_minutes = match offset {
        toml::value::Offset::Z => 0,
        toml::value::Offset::Custom { minutes } => i64::from(minutes),
    };
    Ok(seconds - offset_minutes * 60)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// A TOML value as JSON; times become their RFC 3339 text.
pub(crate) fn to_json(value: toml::Value) -> Result<serde_json::Value, String> {
    Ok(match value {
        toml::Value::String(text) => serde_json::Value::String(text),
        toml::Value::Integer(number) => serde_json::Value::from(number),
        toml::Value::Float(number) => serde_json::Number::from_f64(number)
            .map(serde_json::Value::Number)
            .ok_or_else(|| format!("{number} has no JSON form"))?,
        toml::Value::Boolean(flag) => serde_json::Value::Bool(flag),
        toml::Value::Datetime(datetime) => serde_json::Value::String(datetime.to_string()),
        toml::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(to_json).collect::<Result<_, _>>()?)
        }
        toml::Value::Table(table) => serde_json::Value::Object(to_json_map(table)?),
    })
}

/// A TOML table as a JSON object.
pub(crate) fn to_json_map(table: toml::Table) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    table.into_iter().map(|(key, value)| Ok((key, to_json(value)?))).collect()
}

/// Whether `text` is an absolute `http` or `https` URL with a host.
pub(crate) fn http_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|_| format!("{text:?} is not an absolute URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("{text:?} is not an http or https URL"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_seconds_minutes_hours_and_days() {
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("10m"), Ok(600));
        assert_eq!(parse_duration("1h"), Ok(3_600));
        assert_eq!(parse_duration("30d"), Ok(30 * 86_400));
        assert_eq!(parse_duration("1h 30m"), Ok(5_400));
    }

    #[test]
    fn bad_or_fractional_durations_are_refused() {
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("1500ms").unwrap_err().contains("whole number"));
    }

    #[test]
    fn a_duration_must_be_a_string() {
        let error = toml::Value::Integer(3600).try_into::<Seconds>().unwrap_err();
        assert!(error.message().contains("a duration such as"), "{error}");
    }

    #[test]
    fn rfc3339_times_become_unix_seconds() {
        let at = |text: &str| unix_time(&toml::Value::String(text.into()));
        assert_eq!(at("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(at("2026-01-31T00:00:00Z"), Ok(1_769_817_600));
        assert_eq!(at("2000-03-01T01:00:00+01:00"), Ok(951_868_800));
        assert!(at("2026-01-31").is_err());
        assert!(at("2026-01-31T00:00:00").is_err());
        assert!(at("tomorrow").is_err());
    }

    #[test]
    fn toml_times_convert_to_json_text() {
        let table: toml::Table = "at = 2026-01-31T00:00:00Z\nn = [1, true]".parse().unwrap();
        let json = to_json_map(table).unwrap();
        assert_eq!(json["at"], "2026-01-31T00:00:00Z");
        assert_eq!(json["n"], serde_json::json!([1, true]));
    }
}
