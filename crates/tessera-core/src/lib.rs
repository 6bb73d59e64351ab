//! Tessera's protocol core: OAuth 2.1 and OpenID Connect rules, token minting and
//! the store traits. It knows nothing of HTTP, SQL, sockets or files: the HTTP layer
//! hands it parsed requests, a store crate implements its traits.

pub mod account;
pub mod admin;
pub mod attempts;
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
pub mod sessions;
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

/// No two flows share keys in the store's one table of documents ([`store::FlowStore`]).
#[cfg(test)]
mod flow_namespaces {
    use crate::store::Flow as _;

    /// Every flow's namespace, and the marks kept beside them in the same table: checked
    /// below to be pairwise distinct and never a prefix of one another, so no flow can read
    /// or list another's documents.
    fn namespaces() -> Vec<&'static str> {
        vec![
            crate::store::PushedRequests::NAMESPACE,
            crate::store::Interactions::NAMESPACE,
            crate::store::DeviceRequests::NAMESPACE,
            crate::store::UserCodes::NAMESPACE,
            crate::store::CibaRequests::NAMESPACE,
            crate::store::UsersRequests::NAMESPACE,
            crate::mfa::SecondSteps::NAMESPACE,
            crate::passkey_ceremonies::Ceremonies::NAMESPACE,
            // Marks, not flows: an in-doubt consumption, a client's last use.
            crate::grants::RotationsInDoubt::NAMESPACE,
            crate::grants::CodesInDoubt::NAMESPACE,
            crate::grants::RedemptionsInDoubt::NAMESPACE,
            crate::registration::ClientUses::NAMESPACE,
        ]
    }

    /// Every kind of key in the single-use marks (`ReplayStore::remember_once`): a mark
    /// of one kind must never be taken for another's (a DPoP `jti` for a user code's
    /// claim), so none is a prefix of another.
    fn single_use_marks() -> Vec<&'static str> {
        vec![
            "dpop:",
            "client_assertion:",
            "code-in-doubt-claimed:",
            "redeemed-in-doubt-claimed:",
            crate::store::USER_CODE_CLAIMS,
        ]
    }

    #[test]
    fn no_flow_namespace_is_another_or_a_prefix_of_another() {
        none_is_a_prefix_of_another(&namespaces());
    }

    #[test]
    fn no_kind_of_single_use_mark_is_another_or_a_prefix_of_another() {
        none_is_a_prefix_of_another(&single_use_marks());
    }

    fn none_is_a_prefix_of_another(all: &[&str]) {
        for (i, one) in all.iter().enumerate() {
            assert!(one.ends_with(':'), "{one} ends with its separator");
            for (j, other) in all.iter().enumerate() {
                assert!(i == j || !other.starts_with(one), "`{other}` lies inside `{one}`");
            }
        }
    }
}
