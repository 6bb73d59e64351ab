//! The Tessera binary's wiring: configuration into a store, a provider and an HTTP
//! server, plus the background upkeep. The `tessera` command (main.rs) and the
//! integration tests both start the server through [`server`]; [`users`] manages
//! local accounts in the store without it, [`clients`] lists clients; [`login`] is the client side of the device
//! flow, for people signing in from a terminal.

pub mod clients;
pub mod login;
pub mod outbound;
pub mod seed;
pub mod server;
pub mod upkeep;
pub mod users;
