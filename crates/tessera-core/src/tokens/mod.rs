//! Signing keys, their rotation, and the tokens signed with them.

pub mod access_token;
pub mod id_token;
mod issuer;
pub mod jws;
mod key_ring;
mod keys;
mod sealing;

pub use access_token::{AccessTokenClaims, Audience, IssuedAccessToken, ResolvedToken};
pub use issuer::TokenIssuer;
pub use jws::JwsError;
pub use key_ring::{KeyPlan, KeyRing, KeyRingError, KeySet, PublishedKey, plan_next_key};
pub use keys::{KeyError, SigningAlgorithm, SigningKey, generate_pkcs8};
pub use sealing::KeySealer;
