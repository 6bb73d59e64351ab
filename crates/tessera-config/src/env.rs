//! `TESSERA__SECTION__KEY=value` overrides, applied to the parsed file before it is checked,
//! so an overridden value is validated exactly like one written in the file.

use crate::error::ConfigError;

/// The prefix of every override variable.
pub(crate) const PREFIX: &str = "TESSERA__";

/// Separates the levels of a variable name (`TESSERA__SIGNING__ENCRYPTION_KEY`).
const SEPARATOR: &str = "__";

/// One applied override, remembered so that a value read as a number or boolean can be
/// taken as the string it also is when the key wants a string (a numeric passphrase).
/// No `Debug`: `raw` may be a secret (`TESSERA__SIGNING__ENCRYPTION_KEY`).
pub(crate) struct Override {
    /// The variable name, for messages.
    pub var: String,
    /// The lowercased path below the root (`["signing", "encryption_key"]`).
    pub path: Vec<String>,
    /// The value exactly as the environment gave it.
    pub raw: String,
    /// Whether the value was read as a TOML value other than a string.
    pub typed: bool,
    /// Whether the value has already been put back as its raw string.
    pub retried: bool,
}

/// Applies every `TESSERA__*` variable of `env` to `root`, in name order so the result
/// does not depend on the order the process environment lists them in.
pub(crate) fn apply(
    root: &mut toml::Table,
    env: &[(String, String)],
    errors: &mut Vec<ConfigError>,
) -> Vec<Override> {
    let mut vars: Vec<&(String, String)> = env.iter().filter(|(name, _)| name.starts_with(PREFIX)).collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let mut applied = Vec::new();
    for (var, raw) in vars {
        let rest = &var[PREFIX.len()..];
        let path: Vec<String> = rest.split(SEPARATOR).map(str::to_lowercase).collect();
        if path.iter().any(String::is_empty) {
            errors.push(env_error(var, "expected TESSERA__SECTION__KEY with `__` between the levels"));
            continue;
        }
        let value = parse_value(raw);
        let typed = !value.is_str();
        match set(root, &path, value) {
            Ok(()) => {
                applied.push(Override { var: var.clone(), path, raw: raw.clone(), typed, retried: false })
            }
            Err(message) => errors.push(env_error(var, &message)),
        }
    }
    applied
}

/// The overrides from the process environment, and an error for each `TESSERA__*`
/// variable that is not valid Unicode (`std::env::vars` would panic on it).
pub(crate) fn from_process() -> (Vec<(String, String)>, Vec<ConfigError>) {
    let mut vars = Vec::new();
    let mut errors = Vec::new();
    for (name, value) in std::env::vars_os() {
        let Some(name) = name.to_str().filter(|name| name.starts_with(PREFIX)) else { continue };
        match value.into_string() {
            Ok(value) => vars.push((name.to_owned(), value)),
            Err(_) => errors.push(env_error(name, "the value is not valid UTF-8")),
        }
    }
    (vars, errors)
}

fn env_error(var: &str, message: &str) -> ConfigError {
    ConfigError { file: "environment".into(), table: String::new(), key: var.into(), message: message.into() }
}

/// A TOML value when the text is one (`5`, `true`, `["a", "b"]`, `"quoted"`), else the text
/// as a string, so that `TESSERA__ISSUER=https://id.example.com` needs no quotes.
fn parse_value(raw: &str) -> toml::Value {
    match format!("value = {raw}").parse::<toml::Table>() {
        // Exactly one key: a value with a newline must not smuggle in other keys.
        Ok(mut table) if table.len() == 1 => {
            table.remove("value").unwrap_or_else(|| toml::Value::String(raw.to_owned()))
        }
        _ => toml::Value::String(raw.to_owned()),
    }
}

fn set(root: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let mut node = toml::Value::Table(std::mem::take(root));
    let result = set_in(&mut node, path, value, &mut String::new());
    if let toml::Value::Table(table) = node {
        *root = table;
    }
    result
}

fn set_in(
    node: &mut toml::Value,
    path: &[String],
    value: toml::Value,
    walked: &mut String,
) -> Result<(), String> {
    let Some((head, rest)) = path.split_first() else {
        *node = value;
        return Ok(());
    };
    let child = match node {
        toml::Value::Table(table) => {
            if rest.is_empty() {
                table.insert(head.clone(), value);
                return Ok(());
            }
            table.entry(head.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()))
        }
        // Arrays of tables (`[[clients]]`) are addressed by index: TESSERA__CLIENTS__0__CLIENT_NAME.
        toml::Value::Array(items) => {
            let count = items.len();
            let index: usize =
                head.parse().map_err(|_| format!("`{walked}` is an array: `{head}` is not an index"))?;
            items
                .get_mut(index)
                .ok_or_else(|| format!("`{walked}` has {count} entries, so index {index} is past its end"))?
        }
        _ => return Err(format!("`{walked}` is not a table, so it has no key `{head}`")),
    };
    if !walked.is_empty() {
        walked.push('.');
    }
    walked.push_str(head);
    set_in(child, rest, value, walked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(text: &str, vars: &[(&str, &str)]) -> (toml::Table, Vec<ConfigError>) {
        let mut root: toml::Table = text.parse().unwrap();
        let env: Vec<(String, String)> =
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let mut errors = Vec::new();
        apply(&mut root, &env, &mut errors);
        (root, errors)
    }

    #[test]
    fn values_that_parse_as_toml_keep_their_type() {
        let (root, _) =
            applied("", &[("TESSERA__A__N", "5"), ("TESSERA__A__B", "true"), ("TESSERA__A__L", "[1, 2]")]);
        assert_eq!(root["a"]["n"].as_integer(), Some(5));
        assert_eq!(root["a"]["b"].as_bool(), Some(true));
        assert_eq!(root["a"]["l"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn other_values_are_strings_without_quotes() {
        let (root, _) =
            applied("", &[("TESSERA__ISSUER", "https://id.example.com"), ("TESSERA__T__X", "5m")]);
        assert_eq!(root["issuer"].as_str(), Some("https://id.example.com"));
        assert_eq!(root["t"]["x"].as_str(), Some("5m"));
    }

    #[test]
    fn a_value_with_a_newline_cannot_add_keys() {
        let (root, _) = applied("", &[("TESSERA__A", "1\nb = 2")]);
        assert_eq!(root["a"].as_str(), Some("1\nb = 2"));
        assert!(!root.contains_key("b"));
    }

    #[test]
    fn names_are_lowercased_and_replace_file_values() {
        let (root, _) =
            applied("[storage]\nurl = \"sqlite://a.db\"", &[("TESSERA__STORAGE__URL", "sqlite://b.db")]);
        assert_eq!(root["storage"]["url"].as_str(), Some("sqlite://b.db"));
    }

    #[test]
    fn array_entries_are_addressed_by_index() {
        let (root, errors) =
            applied("[[clients]]\nclient_id = \"a\"", &[("TESSERA__CLIENTS__0__CLIENT_NAME", "A")]);
        assert!(errors.is_empty());
        assert_eq!(root["clients"][0]["client_name"].as_str(), Some("A"));
    }

    #[test]
    fn an_override_below_a_plain_value_is_an_error_naming_the_variable() {
        let (_, errors) =
            applied("issuer = \"x\"", &[("TESSERA__ISSUER__HOST", "y"), ("TESSERA__A____B", "1")]);
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[1].key, "TESSERA__ISSUER__HOST");
        assert_eq!(errors[1].file, "environment");
    }

    #[test]
    fn other_variables_are_ignored() {
        let (root, errors) = applied("", &[("TESSERA_X", "1"), ("PATH", "/bin")]);
        assert!(root.is_empty() && errors.is_empty());
    }
}
