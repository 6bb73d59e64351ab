//! HTTP details the core must not see: form bodies, cookies and client credentials.

mod client_address;
mod client_tls;
pub mod cookies;
mod credentials;
mod dpop;
mod form;

pub use client_address::ClientAddress;
pub use client_tls::ClientTls;
pub use credentials::credentials;
pub use dpop::dpop_proof;
pub use form::{OAuthForm, parse as parse_form};
