//! Configuration errors. Each names the file, the table and the key, because the
//! operator fixes them by editing exactly that line (config.md: "names the file, the
//! table and the key").

use std::fmt;

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or origin name, or `environment`) the error is about.
    pub file: String,
    /// The table as the file spells it, with the entry that identifies an array element:
    /// `[tokens]`, `[server.tls]`, `[clients] client_id="web-app"`; empty for top-level keys.
    pub table: String,
    /// The key within the table, with a path below it when nested (`client_secrets[1].sha256`);
    /// empty when the error is about the table or the file as a whole.
    pub key: String,
    /// What is wrong, in one line.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.file)?;
        if !self.table.is_empty() {
            write!(f, " {}:", self.table)?;
        }
        if !self.key.is_empty() {
            write!(f, " key `{}`:", self.key)?;
        }
        write!(f, " {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Every error found in a configuration: the whole list, so one run shows them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The errors, in the order they were found.
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }

    /// How many errors there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the list is empty (never, for a returned error).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(table: &str, key: &str) -> ConfigError {
        ConfigError {
            file: "examples/quickstart.toml".into(),
            table: table.into(),
            key: key.into(),
            message: "\"foo\" is not an absolute URI".into(),
        }
    }

    #[test]
    fn an_error_reads_file_table_key_and_message() {
        let error = error("[clients] client_id=\"web-app\"", "redirect_uris");
        assert_eq!(
            error.to_string(),
            "examples/quickstart.toml: [clients] client_id=\"web-app\": key `redirect_uris`: \
             \"foo\" is not an absolute URI"
        );
    }

    #[test]
    fn empty_table_and_key_are_left_out_of_the_message() {
        assert_eq!(error("", "").to_string(), "examples/quickstart.toml: \"foo\" is not an absolute URI");
        assert_eq!(
            error("", "issuer").to_string(),
            "examples/quickstart.toml: key `issuer`: \"foo\" is not an absolute URI"
        );
    }

    #[test]
    fn the_list_prints_one_line_per_error() {
        let errors = ConfigErrors(vec![error("[a]", "x"), error("[b]", "y")]);
        assert_eq!(errors.to_string().lines().count(), 2);
    }
}
