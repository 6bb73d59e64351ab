//! Tessera's protocol core: OAuth 2.1 and OpenID Connect rules, token minting and
//! the store traits. It knows nothing of HTTP, SQL, sockets or files: the HTTP layer
//! hands it parsed requests, a store crate implements its traits.

pub mod account;
pub mod admin;
pub mod authorize;
pub mod catalog;
pub mod ciba;
pub mod client_auth;
pub mod clock;
pub mod decoupled;
pub mod device;
pub mod discovery;
pub mod end_session;
pub mod error;
pub mod grants;
pub mod introspection;
pub mod metadata_documents;
pub mod mfa;
pub mod model;
pub mod notify;
pub mod passkey_ceremonies;
pub mod passkeys;
pub mod password;
pub mod pkce;
pub mod provider;
pub mod random;
pub mod redirect_uri;
pub mod registration;
pub mod request;
pub mod revocation;
pub mod secret;
pub mod secret_checks;
pub mod sender;
pub mod settings;
pub mod sign_in;
pub mod store;
#[cfg(any(test, feature = "test-util"))]
pub mod test_support;
pub mod token;
pub mod tokens;
pub mod userinfo;

pub use clock::{Clock, SystemClock, Timestamp};
pub use error::{ErrorCode, OAuthError};
pub use provider::Provider;
