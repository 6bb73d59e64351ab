//! HTTP details the core must not see: form bodies and client credentials.

mod credentials;
mod form;

pub use credentials::credentials;
pub use form::OAuthForm;
