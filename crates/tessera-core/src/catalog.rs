//! The scopes and resources a deployment defines, and the rule that turns a requested
//! `scope` and `resource` into what a token carries.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::OAuthError;
use crate::model::{ApiResource, ApiScope, Client, IdentityResource};

/// The `offline_access` scope (OpenID Connect Core §11): asks for a refresh token.
pub const OFFLINE_ACCESS: &str = "offline_access";
/// The scope an admin token carries (the administration API).
pub const ADMIN_SCOPE: &str = "tessera:admin";
/// The audience (API resource) an admin token is for.
pub const ADMIN_AUDIENCE: &str = "tessera-admin";

/// Every scope and resource, as configured.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    pub api_scopes: Vec<ApiScope>,
    pub api_resources: Vec<ApiResource>,
    pub identity_resources: Vec<IdentityResource>,
}

/// [`Resources`] indexed for the token endpoint.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    resources: Resources,
    /// API scope -> the resources that own it, in configuration order.
    owners: HashMap<String, Vec<usize>>,
}

/// What an API-access grant carries: scopes and the audiences they reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiGrant {
    pub scopes: Vec<String>,
    pub audience: Vec<String>,
}

impl Catalog {
    /// Indexes the configured resources.
    #[must_use]
    pub fn new(resources: Resources) -> Self {
        let mut owners: HashMap<String, Vec<usize>> = HashMap::new();
        for (index, resource) in resources.api_resources.iter().enumerate() {
            for scope in &resource.scopes {
                owners.entry(scope.clone()).or_default().push(index);
            }
        }
        Self { resources, owners }
    }

    /// The configured resources.
    #[must_use]
    pub fn resources(&self) -> &Resources {
        &self.resources
    }

    /// The API resource called `name`.
    #[must_use]
    pub fn api_resource(&self, name: &str) -> Option<&ApiResource> {
        self.resources.api_resources.iter().find(|resource| resource.name == name)
    }

    fn is_api_scope(&self, name: &str) -> bool {
        self.resources.api_scopes.iter().any(|scope| scope.name == name)
    }

    fn is_identity_scope(&self, name: &str) -> bool {
        self.resources.identity_resources.iter().any(|resource| resource.name == name)
    }

    /// Every scope name, for discovery's `scopes_supported`.
    #[must_use]
    pub fn scope_names(&self) -> Vec<String> {
        let identity = self.resources.identity_resources.iter().map(|r| r.name.clone());
        // The administration API's scope is not advertised: it is for the operator's client.
        let api = self.resources.api_scopes.iter().map(|s| s.name.clone()).filter(|name| name != ADMIN_SCOPE);
        // Listed so that clients which add it only when offered (MCP's SEP-2207) do.
        identity.chain(std::iter::once(OFFLINE_ACCESS.to_owned())).chain(api).collect()
    }

    /// Decides the API scopes and audience of a token for a grant without a user
    /// (client credentials): identity scopes and `offline_access` are refused.
    ///
    /// Absent `scope` means every API scope the client is allowed. `resources`
    /// (RFC 8707 §2) narrows the audience to the named APIs.
    ///
    /// # Errors
    /// `invalid_scope` for a malformed, unknown, disallowed or user-only scope;
    /// `invalid_target` for an unknown resource or one the scopes do not reach.
    pub fn grant_api_access(
        &self,
        client: &Client,
        requested: Option<&str>,
        resources: &[String],
    ) -> Result<ApiGrant, OAuthError> {
        let scopes = self.requested_scopes(client, requested, |scope| self.is_api_scope(scope))?;
        if let Some(user_scope) = scopes.iter().find(|scope| !self.is_api_scope(scope)) {
            return Err(OAuthError::invalid_scope(format!("scope `{user_scope}` needs a signed-in user")));
        }
        if scopes.is_empty() {
            return Err(OAuthError::invalid_scope("no API scope requested or allowed"));
        }
        self.audience_for(scopes, resources)
    }

    /// Decides the scopes and API audience for a grant with a signed-in user: identity
    /// scopes, API scopes and `offline_access` (when the client may have refresh
    /// tokens). Absent `scope` means every scope the client is allowed.
    ///
    /// # Errors
    /// `invalid_scope` for a malformed, unknown or disallowed scope; `invalid_target`
    /// for a resource the scopes do not reach.
    pub fn grant_user_access(
        &self,
        client: &Client,
        requested: Option<&str>,
        resources: &[String],
    ) -> Result<ApiGrant, OAuthError> {
        // Absent `scope`, the client's scopes; with `resource` indicators, of the API
        // scopes only those of the resources asked for (what an MCP client expects).
        let mut scopes = self.requested_scopes(client, requested, |scope| {
            resources.is_empty()
                || !self.is_api_scope(scope)
                || resources
                    .iter()
                    .any(|name| self.api_resource(name).is_some_and(|r| r.scopes.iter().any(|s| s == scope)))
        })?;
        // A client that registered itself with the refresh_token grant (RFC 7591 §2),
        // or whose metadata document names it, gets refresh tokens whatever `scope`
        // says: MCP clients ask for the grant, not for `offline_access`.
        let registered = client.registration.is_some() || client.from_metadata_document;
        if registered && client.allow_offline_access && !scopes.iter().any(|scope| scope == OFFLINE_ACCESS) {
            scopes.push(OFFLINE_ACCESS.to_owned());
        }
        if scopes.is_empty() {
            return Err(OAuthError::invalid_scope("no scope requested or allowed"));
        }
        let (api, other): (Vec<String>, Vec<String>) = scopes.into_iter().partition(|s| self.is_api_scope(s));
        let ApiGrant { scopes: api, audience } = if api.is_empty() && resources.is_empty() {
            ApiGrant { scopes: api, audience: Vec::new() }
        } else {
            self.audience_for(api, resources)?
        };
        Ok(ApiGrant { scopes: other.into_iter().chain(api).collect(), audience })
    }

    /// The display name of a scope, for the consent page.
    #[must_use]
    pub fn display_name<'a>(&'a self, scope: &'a str) -> &'a str {
        let api = self.resources.api_scopes.iter().find(|s| s.name == scope).map(|s| s.display_name.as_str());
        let identity = self
            .resources
            .identity_resources
            .iter()
            .find(|r| r.name == scope)
            .map(|r| r.display_name.as_str());
        match (api.or(identity), scope) {
            (Some(name), _) if !name.is_empty() => name,
            (_, OFFLINE_ACCESS) => "Stay signed in (offline access)",
            _ => scope,
        }
    }

    /// The user claims the identity scopes among `scopes` release (OpenID Connect Core §5.4).
    #[must_use]
    pub fn claims_for(&self, scopes: &[String]) -> Vec<&str> {
        let mut claims: Vec<&str> = Vec::new();
        for resource in &self.resources.identity_resources {
            if scopes.contains(&resource.name) {
                for claim in &resource.user_claims {
                    if !claims.contains(&claim.as_str()) {
                        claims.push(claim);
                    }
                }
            }
        }
        claims
    }

    /// The requested scopes, each defined and allowed for the client; absent `scope`,
    /// the client's allowed scopes that `by_default` picks (RFC 6749 §3.3).
    fn requested_scopes(
        &self,
        client: &Client,
        requested: Option<&str>,
        by_default: impl Fn(&str) -> bool,
    ) -> Result<Vec<String>, OAuthError> {
        let Some(text) = requested else {
            let mut scopes: Vec<String> =
                client.allowed_scopes.iter().filter(|scope| by_default(scope)).cloned().collect();
            // A registered client whose `scope` names offline_access (RFC 7591 §2) asked
            // for refresh tokens by default.
            let registered_offline = client.registration.as_ref().is_some_and(|registration| {
                registration
                    .metadata
                    .scope
                    .as_deref()
                    .is_some_and(|scope| scope.split(' ').any(|s| s == OFFLINE_ACCESS))
            });
            if registered_offline && client.allow_offline_access && by_default(OFFLINE_ACCESS) {
                scopes.push(OFFLINE_ACCESS.to_owned());
            }
            return Ok(scopes);
        };
        let scopes = parse_scope(text)?;
        for scope in &scopes {
            self.check_client_may_request(client, scope)?;
        }
        Ok(scopes)
    }

    /// Checks that `scope` is defined and allowed for the client.
    fn check_client_may_request(&self, client: &Client, scope: &str) -> Result<(), OAuthError> {
        let known = scope == OFFLINE_ACCESS || self.is_api_scope(scope) || self.is_identity_scope(scope);
        if !known {
            return Err(OAuthError::invalid_scope(format!("unknown scope `{scope}`")));
        }
        let allowed = if scope == OFFLINE_ACCESS {
            client.allow_offline_access
        } else {
            client.allowed_scopes.iter().any(|allowed| allowed == scope)
        };
        if allowed {
            Ok(())
        } else {
            Err(OAuthError::invalid_scope(format!("scope `{scope}` is not allowed for this client")))
        }
    }

    /// The audience for `scopes`, narrowed by `resource` indicators (RFC 8707 §2).
    fn audience_for(&self, scopes: Vec<String>, resources: &[String]) -> Result<ApiGrant, OAuthError> {
        if resources.is_empty() {
            let audience: BTreeSet<&str> = scopes
                .iter()
                .flat_map(|scope| self.owners_of(scope))
                .map(|resource| resource.name.as_str())
                .collect();
            let audience = audience.into_iter().map(str::to_owned).collect();
            return Ok(ApiGrant { scopes, audience });
        }
        let mut audience = Vec::new();
        for name in resources {
            if self.api_resource(name).is_none() {
                return Err(OAuthError::invalid_target(format!("unknown resource `{name}`")));
            }
            if !scopes.iter().any(|scope| self.owners_of(scope).any(|owner| &owner.name == name)) {
                return Err(OAuthError::invalid_target(format!(
                    "no granted scope belongs to resource `{name}`"
                )));
            }
            if !audience.contains(name) {
                audience.push(name.clone());
            }
        }
        // RFC 8707 §2.2: the token is for the indicated resources, so scopes of others drop out.
        let scopes = scopes
            .into_iter()
            .filter(|scope| self.owners_of(scope).any(|owner| audience.contains(&owner.name)))
            .collect();
        Ok(ApiGrant { scopes, audience })
    }

    fn owners_of<'a>(&'a self, scope: &str) -> impl Iterator<Item = &'a ApiResource> + 'a {
        self.owners
            .get(scope)
            .into_iter()
            .flatten()
            .filter_map(|&index| self.resources.api_resources.get(index))
    }
}

/// Splits a `scope` value into its tokens (RFC 6749 §3.3), refusing characters
/// outside NQCHAR and duplicates collapsed.
///
/// # Errors
/// `invalid_scope` for an empty value or a forbidden character.
pub fn parse_scope(text: &str) -> Result<Vec<String>, OAuthError> {
    let mut scopes: Vec<String> = Vec::new();
    for token in text.split(' ').filter(|token| !token.is_empty()) {
        // RFC 6749 §3.3: NQCHAR = %x21 / %x23-5B / %x5D-7E
        let valid =
            token.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
        if !valid {
            return Err(OAuthError::invalid_scope("scope contains a character RFC 6749 §3.3 forbids"));
        }
        if !scopes.iter().any(|seen| seen == token) {
            scopes.push(token.to_owned());
        }
    }
    if scopes.is_empty() {
        return Err(OAuthError::invalid_scope("empty scope"));
    }
    Ok(scopes)
}

#[cfg(test)]
mod tests {
    use crate::ErrorCode;
    use crate::test_support::{catalog, service_client};

    #[test]
    fn absent_scope_grants_every_allowed_api_scope_with_its_audience() {
        let client = service_client("svc", &["api1.read", "api2.read"]);
        let grant = catalog().grant_api_access(&client, None, &[]).unwrap();
        assert_eq!(grant.scopes, ["api1.read", "api2.read"]);
        assert_eq!(grant.audience, ["api1", "api2"]);
    }

    #[test]
    fn unknown_and_disallowed_scopes_are_invalid_scope() {
        let client = service_client("svc", &["api1.read"]);
        for scope in ["nope", "api1.write", "openid", "offline_access", "a\"b"] {
            let error = catalog().grant_api_access(&client, Some(scope), &[]).unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidScope, "{scope}");
        }
    }

    #[test]
    fn resource_narrows_audience_and_scopes() {
        let client = service_client("svc", &["api1.read", "api2.read"]);
        let grant = catalog().grant_api_access(&client, None, &["api2".into()]).unwrap();
        assert_eq!(grant.scopes, ["api2.read"]);
        assert_eq!(grant.audience, ["api2"]);
    }

    #[test]
    fn unknown_or_unreached_resource_is_invalid_target() {
        let client = service_client("svc", &["api1.read"]);
        for resource in ["nope", "api2"] {
            let error = catalog().grant_api_access(&client, None, &[resource.into()]).unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidTarget, "{resource}");
        }
    }
}
