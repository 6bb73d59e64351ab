//! `[[api_scopes]]`, `[[api_resources]]` and `[[identity_resources]]`.

use std::collections::BTreeSet;

use serde::Deserialize;
use tessera_core::catalog::{OFFLINE_ACCESS, Resources};
use tessera_core::model::{ApiResource, ApiScope, IdentityResource};
use tessera_core::secret::{SecretHash, StoredSecret};

use crate::decode::{Cx, Place, Unknown};

/// The standard scopes of OpenID Connect Core §5.4 and the claims each requests.
const STANDARD_IDENTITY: &[(&str, &str, &[&str])] = &[
    ("openid", "Your user identifier", &["sub"]),
    (
        "profile",
        "Your profile: name, picture and similar details",
        &[
            "name",
            "family_name",
            "given_name",
            "middle_name",
            "nickname",
            "preferred_username",
            "profile",
            "picture",
            "website",
            "gender",
            "birthdate",
            "zoneinfo",
            "locale",
            "updated_at",
        ],
    ),
    ("email", "Your email address", &["email", "email_verified"]),
    ("address", "Your postal address", &["address"]),
    ("phone", "Your phone number", &["phone_number", "phone_number_verified"]),
];

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawApiScope {
    name: Option<String>,
    display_name: Option<String>,
    #[serde(flatten)]
    unknown: Unknown,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawApiResource {
    name: Option<String>,
    display_name: Option<String>,
    scopes: Vec<String>,
    secrets: Vec<toml::Table>,
    #[serde(flatten)]
    unknown: Unknown,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawResourceSecret {
    value: Option<String>,
    sha256: Option<String>,
    #[serde(flatten)]
    unknown: Unknown,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawIdentityResource {
    name: Option<String>,
    display_name: Option<String>,
    user_claims: Option<Vec<String>>,
    #[serde(flatten)]
    unknown: Unknown,
}

/// The three resource arrays, as they come from the file.
pub(crate) struct RawResources {
    pub api_scopes: Vec<toml::Table>,
    pub api_resources: Vec<toml::Table>,
    pub identity_resources: Vec<toml::Table>,
}

/// Checks the scopes and resources and how they refer to each other.
pub(crate) fn resources(cx: &mut Cx, raw: RawResources) -> Resources {
    let mut names = BTreeSet::new();
    let mut identity_resources = Vec::new();
    for (index, table) in raw.identity_resources.into_iter().enumerate() {
        let place = Place::entry("identity_resources", index, "name", &table);
        if let Some(resource) = identity_resource(cx, &place, table) {
            claim_name(cx, &place, &mut names, &resource.name);
            identity_resources.push(resource);
        }
    }
    let mut api_scopes = Vec::new();
    let mut scope_places = Vec::new();
    for (index, table) in raw.api_scopes.into_iter().enumerate() {
        let place = Place::entry("api_scopes", index, "name", &table);
        let raw: RawApiScope = cx.decode(&place, table).unwrap_or_default();
        cx.unknown(&place, &raw.unknown);
        let Some(name) = scope_name(cx, &place, raw.name) else { continue };
        claim_name(cx, &place, &mut names, &name);
        let display_name = raw.display_name.unwrap_or_else(|| name.clone());
        api_scopes.push(ApiScope { name, display_name });
        scope_places.push(place);
    }
    let mut api_resources: Vec<ApiResource> = Vec::new();
    for (index, table) in raw.api_resources.into_iter().enumerate() {
        let place = Place::entry("api_resources", index, "name", &table);
        let Some(resource) = api_resource(cx, &place, table, &api_scopes) else { continue };
        if api_resources.iter().any(|earlier| earlier.name == resource.name) {
            cx.error(&place, "name", format!("duplicate API resource `{}`", resource.name));
            continue;
        }
        api_resources.push(resource);
    }
    for (scope, place) in api_scopes.iter().zip(&scope_places) {
        if !api_resources.iter().any(|resource| resource.scopes.contains(&scope.name)) {
            cx.error(
                place,
                "name",
                format!(
                    "scope `{}` is in no [[api_resources]] entry's `scopes`: its tokens would have no audience",
                    scope.name
                ),
            );
        }
    }
    // The administration API is itself a resource (`tessera-admin`, scope
    // `tessera:admin`): a client allowed that scope administers this server.
    if !api_scopes.iter().any(|scope| scope.name == tessera_core::admin::ADMIN_SCOPE)
        && !api_resources.iter().any(|resource| resource.name == tessera_core::admin::ADMIN_AUDIENCE)
    {
        api_scopes.push(tessera_core::model::ApiScope {
            name: tessera_core::admin::ADMIN_SCOPE.to_owned(),
            display_name: "Administer this server".to_owned(),
        });
        api_resources.push(tessera_core::model::ApiResource {
            name: tessera_core::admin::ADMIN_AUDIENCE.to_owned(),
            display_name: "Tessera administration API".to_owned(),
            scopes: vec![tessera_core::admin::ADMIN_SCOPE.to_owned()],
            secrets: Vec::new(),
        });
    }
    Resources { api_scopes, api_resources, identity_resources }
}

/// A scope name: present and a valid scope token (RFC 6749 §3.3), not `offline_access`.
fn scope_name(cx: &mut Cx, place: &Place, name: Option<String>) -> Option<String> {
    let Some(name) = name else {
        cx.error(place, "name", "missing required key");
        return None;
    };
    // RFC 6749 §3.3: scope-token = 1*NQCHAR, NQCHAR = %x21 / %x23-5B / %x5D-7E.
    let valid = !name.is_empty()
        && name.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
    if !valid {
        cx.error(
            place,
            "name",
            format!("{name:?} is not a scope token (RFC 6749 §3.3: no spaces, quotes or backslashes)"),
        );
        return None;
    }
    if name == OFFLINE_ACCESS {
        cx.error(
            place,
            "name",
            "`offline_access` is built in: a client gets it with allow_offline_access = true",
        );
        return None;
    }
    Some(name)
}

/// Scope names share one namespace: `scope=x` must mean one thing.
fn claim_name(cx: &mut Cx, place: &Place, names: &mut BTreeSet<String>, name: &str) {
    if !names.insert(name.to_owned()) {
        cx.error(place, "name", format!("scope `{name}` is defined twice"));
    }
}

fn identity_resource(cx: &mut Cx, place: &Place, table: toml::Table) -> Option<IdentityResource> {
    let raw: RawIdentityResource = cx.decode(place, table).unwrap_or_default();
    cx.unknown(place, &raw.unknown);
    let name = scope_name(cx, place, raw.name)?;
    let standard = STANDARD_IDENTITY.iter().find(|(standard, _, _)| *standard == name);
    let user_claims = match (raw.user_claims, standard) {
        (Some(claims), _) => claims,
        (None, Some((_, _, claims))) => claims.iter().map(|claim| (*claim).to_owned()).collect(),
        (None, None) => {
            cx.error(place, "user_claims", "missing: only the standard scopes (openid, profile, email, address, phone) know their claims");
            return None;
        }
    };
    let display_name = raw
        .display_name
        .or_else(|| standard.map(|(_, display_name, _)| (*display_name).to_owned()))
        .unwrap_or_else(|| name.clone());
    Some(IdentityResource { name, display_name, user_claims })
}

fn api_resource(
    cx: &mut Cx,
    place: &Place,
    table: toml::Table,
    api_scopes: &[ApiScope],
) -> Option<ApiResource> {
    let raw: RawApiResource = cx.decode(place, table).unwrap_or_default();
    cx.unknown(place, &raw.unknown);
    for scope in &raw.scopes {
        if !api_scopes.iter().any(|known| &known.name == scope) {
            cx.error(place, "scopes", format!("`{scope}` is not defined in [[api_scopes]]"));
        }
    }
    let mut secrets = Vec::new();
    for (index, table) in raw.secrets.into_iter().enumerate() {
        let inner = place.inner("secrets", Some(index));
        if let Some(secret) = resource_secret(cx, &inner, table) {
            secrets.push(secret);
        }
    }
    let Some(name) = raw.name.filter(|name| !name.is_empty()) else {
        cx.error(place, "name", "missing required key");
        return None;
    };
    let display_name = raw.display_name.unwrap_or_else(|| name.clone());
    Some(ApiResource { name, display_name, scopes: raw.scopes, secrets })
}

fn resource_secret(cx: &mut Cx, place: &Place, table: toml::Table) -> Option<StoredSecret> {
    let raw: RawResourceSecret = cx.decode(place, table).unwrap_or_default();
    cx.unknown(place, &raw.unknown);
    match (raw.value, raw.sha256) {
        (Some(value), None) if !value.is_empty() => {
            // Salted argon2id, as for client secrets: the plain secret is never kept.
            match tessera_core::password::hash_password(&value, &tessera_core::random::Rng::default()) {
                Ok(phc) => Some(StoredSecret::Argon2id(phc)),
                Err(message) => {
                    cx.error(place, "value", message);
                    None
                }
            }
        }
        (Some(_), None) => {
            cx.error(place, "value", "must not be empty");
            None
        }
        (None, Some(sha256)) => SecretHash::from_base64(&sha256)
            .map(StoredSecret::Sha256)
            .map_err(|message| {
                cx.error(place, "sha256", format!("{message}: expected base64 of a SHA-256 digest"))
            })
            .ok(),
        _ => {
            cx.error(place, "", "needs exactly one of `value` or `sha256`");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::{BASE, errors_of, has_error};

    #[test]
    fn standard_identity_resources_need_only_their_name() {
        let config = crate::test_support::load_ok(&format!(
            "{BASE}\n[[identity_resources]]\nname = \"profile\"\n[[identity_resources]]\nname = \"phone\""
        ));
        let identity = &config.resources.identity_resources;
        let profile = identity.iter().find(|r| r.name == "profile").unwrap();
        assert_eq!(profile.user_claims.len(), 14);
        assert!(profile.user_claims.contains(&"updated_at".to_owned()));
        let phone = identity.iter().find(|r| r.name == "phone").unwrap();
        assert_eq!(phone.user_claims, ["phone_number", "phone_number_verified"]);
        let openid = identity.iter().find(|r| r.name == "openid").unwrap();
        assert_eq!(openid.user_claims, ["sub"]);
    }

    #[test]
    fn a_custom_identity_resource_must_list_its_claims() {
        let errors = errors_of(&format!("{BASE}\n[[identity_resources]]\nname = \"roles\""));
        assert!(has_error(&errors, "[identity_resources] name=\"roles\"", "user_claims"), "{errors:#?}");
    }

    #[test]
    fn an_api_resource_naming_an_undefined_scope_is_an_error() {
        let errors =
            errors_of(&BASE.replace("scopes = [\"api1.read\"]", "scopes = [\"api1.read\", \"api1.nope\"]"));
        assert!(has_error(&errors, "[api_resources] name=\"api1\"", "scopes"), "{errors:#?}");
    }

    #[test]
    fn an_api_scope_in_no_api_resource_is_an_error() {
        let errors = errors_of(&format!("{BASE}\n[[api_scopes]]\nname = \"orphan\""));
        assert!(has_error(&errors, "[api_scopes] name=\"orphan\"", "name"), "{errors:#?}");
    }

    #[test]
    fn a_scope_defined_twice_is_an_error() {
        let errors = errors_of(&format!("{BASE}\n[[api_scopes]]\nname = \"api1.read\""));
        assert!(has_error(&errors, "[api_scopes] name=\"api1.read\"", "name"), "{errors:#?}");
    }

    #[test]
    fn api_resource_secrets_are_kept_only_as_hashes() {
        let config = crate::test_support::load_ok(BASE);
        let secrets = &config.resources.api_resources[0].secrets;
        assert_eq!(secrets.len(), 1);
        let tessera_core::secret::StoredSecret::Argon2id(phc) = &secrets[0] else { panic!("{secrets:?}") };
        assert!(tessera_core::password::verify_password("api1-secret", phc));
        assert!(!phc.contains(&tessera_core::secret::SecretHash::of("api1-secret").to_base64url()));
    }

    #[test]
    fn an_api_resource_secret_needs_a_valid_sha256() {
        let errors = errors_of(&BASE.replace("{ value = \"api1-secret\" }", "{ sha256 = \"AAAA\" }"));
        assert!(has_error(&errors, "[api_resources] name=\"api1\"", "secrets[0].sha256"), "{errors:#?}");
    }
}
