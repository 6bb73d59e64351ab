//! Integration tests: the real server on a loopback port, real clients over HTTP.
#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests: a failed expectation is a panic")]

mod admin;
mod authorize_errors;
mod bff;
mod bff_browser;
mod browser;
mod chromium;
mod ciba;
mod client_credentials;
mod client_credentials_slow_hash;
mod code_flow;
mod command;
mod configuration_removal;
mod device_decisions;
mod device_flow;
mod discovery_and_keys;
mod dpop;
mod hardening_sign_in;
mod interop;
mod introspection;
mod login_command;
mod mcp_sdk;
mod metadata_documents;
mod mtls;
mod multi_instance;
mod outage;
mod outage_support;
mod private_key_jwt;
mod refresh_and_reuse;
mod registration;
mod requests;
mod resource;
mod slow_clients;
mod support;
mod token_exchange;
mod webauthn_support;
