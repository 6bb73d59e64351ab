//! What minting and reading this server's tokens uses, and nothing more: not the
//! `Provider`, so the token modules sit below everything that issues or reads tokens.

use super::key_ring::KeyRing;
use crate::clock::Clock;
use crate::random::Rng;
use crate::settings::Settings;
use crate::store::Store;

/// The settings, keys, randomness, store and clock tokens are made and read with.
#[derive(Clone, Copy)]
pub struct TokenIssuer<'a> {
    pub settings: &'a Settings,
    pub keys: &'a KeyRing,
    pub rng: &'a Rng,
    /// Reference tokens, revocations, and the clients and users a token names.
    pub store: &'a dyn Store,
    pub clock: &'a dyn Clock,
}
