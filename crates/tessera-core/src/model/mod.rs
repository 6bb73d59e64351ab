//! The things the protocol talks about: clients, resources, grants, users.

mod authorization_request;
mod certificate;
mod client;
mod client_registration;
mod decoupled_request;
mod grant;
mod grant_type;
mod resource;
mod user;

pub use authorization_request::{AuthorizationRequest, ResponseMode};
pub use certificate::{ClientCertificate, DistinguishedName};
pub use client::{
    AccessTokenFormat, AuthMethod, CibaDeliveryMode, Client, ClientCredential, ClientId, TokenExchangePolicy,
};
pub use client_registration::{
    ClientRegistration, FieldError, REMOVED_GRANT_TYPES, redirect_uri, scope_defined,
};
pub use decoupled_request::{
    CIBA_POLL_INTERVAL, DEVICE_POLL_INTERVAL, Decision, KEPT_AFTER_EXPIRY, PendingAuthorization, PingTarget,
    SLOW_DOWN_STEP, ciba_request_id, device_request_id,
};
pub use grant::GrantId;
pub use grant_type::GrantType;
pub use resource::{ApiResource, ApiScope, IdentityResource};
pub use user::User;
