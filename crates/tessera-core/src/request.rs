//! Request parameters as the HTTP layer parsed them (RFC 6749 §3.1, §3.2: no repeats,
//! empty values treated as absent), with the one parameter that may repeat.

use std::collections::HashMap;

/// Form parameters of a request.
#[derive(Debug, Default, Clone)]
pub struct Params {
    values: HashMap<String, String>,
    /// `resource` may repeat (RFC 8707 §2).
    resources: Vec<String>,
}

impl Params {
    /// Parameters from single values and the `resource` list.
    #[must_use]
    pub fn new(values: HashMap<String, String>, resources: Vec<String>) -> Self {
        Self { values, resources }
    }

    /// The value of `name`, if present and not empty.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The value of `name`, or `invalid_request` naming it.
    ///
    /// # Errors
    /// `invalid_request` when the parameter is missing.
    pub fn require(&self, name: &'static str) -> Result<&str, crate::OAuthError> {
        self.get(name)
            .ok_or_else(|| crate::OAuthError::invalid_request(format!("missing parameter `{name}`")))
    }

    /// The `resource` indicators.
    #[must_use]
    pub fn resources(&self) -> &[String] {
        &self.resources
    }
}
