//! The things the protocol talks about: clients, resources, grants, users.

mod certificate;
mod client;
mod client_registration;
mod grant;
mod grant_type;
mod resource;
mod user;

pub use certificate::{ClientCertificate, DistinguishedName};
pub use client::{
    AccessTokenFormat, AuthMethod, CibaDeliveryMode, Client, ClientCredential, ClientId, TokenExchangePolicy,
};
pub use client_registration::{
    ClientRegistration, FieldError, REMOVED_GRANT_TYPES, redirect_uri, scope_defined,
};
pub use grant::GrantId;
pub use grant_type::GrantType;
pub use resource::{ApiResource, ApiScope, IdentityResource};
pub use user::User;
