//! `[[users]]`: local accounts to seed the store with.

use std::collections::BTreeSet;

use serde::Deserialize;
use tessera_core::secret::Secret;

use crate::UserSeed;
use crate::decode::{Cx, Place, Unknown, to_json_map};

/// The PHC prefix of the only password hash Tessera stores.
const ARGON2ID_PREFIX: &str = "$argon2id$";

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawUser {
    username: Option<String>,
    password: Option<String>,
    password_hash: Option<String>,
    subject: Option<String>,
    claims: toml::Table,
    #[serde(flatten)]
    unknown: Unknown,
}

/// Checks every user; returns the valid ones.
pub(crate) fn users(cx: &mut Cx, tables: Vec<toml::Table>) -> Vec<UserSeed> {
    let mut usernames = BTreeSet::new();
    let mut subjects = BTreeSet::new();
    let mut users = Vec::new();
    for (index, table) in tables.into_iter().enumerate() {
        let place = Place::entry("users", index, "username", &table);
        let raw: RawUser = cx.decode(&place, table).unwrap_or_default();
        cx.unknown(&place, &raw.unknown);
        let Some(user) = user(cx, &place, raw) else { continue };
        if !usernames.insert(user.username.clone()) {
            cx.error(&place, "username", format!("duplicate username `{}`", user.username));
            continue;
        }
        if let Some(subject) = &user.subject
            && !subjects.insert(subject.clone())
        {
            cx.error(&place, "subject", format!("`{subject}` is already another user's subject"));
            continue;
        }
        users.push(user);
    }
    users
}

fn user(cx: &mut Cx, place: &Place, raw: RawUser) -> Option<UserSeed> {
    let username = raw.username.filter(|name| !name.is_empty());
    if username.is_none() {
        cx.error(place, "username", "missing required key");
    }
    let (password, password_hash) = match (raw.password, raw.password_hash) {
        (Some(password), None) if password.is_empty() => {
            cx.error(place, "password", "must not be empty");
            (None, None)
        }
        (Some(password), None) => (Some(Secret::new(password)), None),
        (None, Some(hash)) if !hash.starts_with(ARGON2ID_PREFIX) => {
            cx.error(
                place,
                "password_hash",
                format!("expected an argon2id PHC string starting with `{ARGON2ID_PREFIX}`"),
            );
            (None, None)
        }
        (None, Some(hash)) => (None, Some(hash)),
        (Some(_), Some(_)) => {
            cx.error(place, "password", "give either `password` or `password_hash`, not both");
            (None, None)
        }
        (None, None) => {
            cx.error(place, "password", "missing: give `password` or `password_hash`");
            (None, None)
        }
    };
    if raw.subject.as_deref() == Some("") {
        cx.error(place, "subject", "must not be empty; leave it out to have one generated");
    }
    if raw.claims.contains_key("sub") {
        cx.error(place, "claims.sub", "`sub` is set with the `subject` key");
    }
    let claims = to_json_map(raw.claims).map_err(|message| cx.error(place, "claims", message)).ok()?;
    if password.is_none() && password_hash.is_none() {
        return None;
    }
    Some(UserSeed { username: username?, password, password_hash, subject: raw.subject, claims })
}

#[cfg(test)]
mod tests {
    use crate::test_support::{BASE, errors_of, has_error, load_ok};

    fn user(body: &str) -> String {
        format!("{BASE}\n[[users]]\nusername = \"bob\"\n{body}")
    }

    #[test]
    fn a_user_keeps_its_password_as_a_secret_and_its_claims_as_json() {
        let config = load_ok(&user("password = \"pw\"\nclaims = { name = \"Bob\", email_verified = true }"));
        let bob = &config.users[0];
        assert_eq!(bob.password.as_ref().map(|p| p.expose()), Some("pw"));
        assert_eq!(bob.claims["email_verified"], true);
        assert!(!format!("{bob:?}").contains("\"pw\""));
    }

    #[test]
    fn a_user_needs_exactly_one_of_password_and_password_hash() {
        let both = errors_of(&user("password = \"pw\"\npassword_hash = \"$argon2id$v=19$x\""));
        assert!(has_error(&both, "[users] username=\"bob\"", "password"), "{both:#?}");
        let neither = errors_of(&user(""));
        assert!(has_error(&neither, "[users] username=\"bob\"", "password"), "{neither:#?}");
    }

    #[test]
    fn a_password_hash_must_be_argon2id() {
        let errors = errors_of(&user("password_hash = \"$2b$12$abc\""));
        assert!(has_error(&errors, "[users] username=\"bob\"", "password_hash"), "{errors:#?}");
        load_ok(&user("password_hash = \"$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA\""));
    }

    #[test]
    fn duplicate_usernames_are_an_error() {
        let errors = errors_of(&format!(
            "{}\n[[users]]\nusername = \"bob\"\npassword = \"x\"",
            user("password = \"y\"")
        ));
        assert!(has_error(&errors, "[users] username=\"bob\"", "username"), "{errors:#?}");
    }
}
