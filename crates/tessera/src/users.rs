//! `tessera users`: local accounts in the configured store, managed without starting
//! the HTTP server. Passwords are stored only as argon2id PHC strings; neither a
//! password nor its hash is ever printed or logged.

use std::io::IsTerminal as _;

use serde_json::{Map, Value};
use tessera_config::Config;
use tessera_core::Timestamp;
use tessera_core::model::User;
use tessera_core::password;
use tessera_core::random::Rng;
use tessera_core::secret::Secret;
use tessera_core::store::{Source, UserStore};
use tessera_store_sql::SqlStore;

/// Why a `tessera users` command failed; its message is meant for the operator.
pub type UsersError = Box<dyn std::error::Error + Send + Sync>;

/// The shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Where a new password is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordSource {
    /// One line of standard input (`--password-stdin`).
    Stdin,
    /// A prompt without echo, typed twice, when standard input is a terminal;
    /// otherwise one line of standard input, as with [`PasswordSource::Stdin`].
    Prompt,
}

/// An account to add: everything but the password.
#[derive(Clone, Debug, Default)]
pub struct NewUser {
    /// The sign-in name; must not exist yet.
    pub username: String,
    /// The stable `sub`; generated when absent.
    pub subject: Option<String>,
    /// Claims released through identity scopes.
    pub claims: Map<String, Value>,
}

/// Opens the configured store (migrating it) and loads the configuration into it, as a
/// start would, so that users named in the configuration exist and are seen as taken.
///
/// # Errors
/// When the store cannot be opened or the configuration cannot be written to it.
pub async fn open_store(config: &Config, rng: &Rng) -> Result<SqlStore, UsersError> {
    let store = SqlStore::connect(&config.storage.url).await?;
    crate::seed::seed(&store, config, rng, tessera_core::clock::Clock::now(&tessera_core::SystemClock))
        .await?;
    Ok(store)
}

/// Parses a `--claim name=value` argument: `true` and `false` become JSON booleans,
/// anything else a JSON string.
///
/// # Errors
/// When there is no `=`, the name is empty, or the name is `sub`.
pub fn parse_claim(argument: &str) -> Result<(String, Value), String> {
    let Some((name, value)) = argument.split_once('=') else {
        return Err(format!("expected name=value, got `{argument}`"));
    };
    if name.is_empty() {
        return Err("the claim name is empty".to_owned());
    }
    // Same rule as the configuration's `[[users]]`: `sub` is the subject, never a claim.
    if name == "sub" {
        return Err("`sub` is set with --subject".to_owned());
    }
    let value = match value {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        other => Value::String(other.to_owned()),
    };
    Ok((name.to_owned(), value))
}

/// Collects parsed claims into a map.
///
/// # Errors
/// When a claim name is given twice.
pub fn claims_from(pairs: Vec<(String, Value)>) -> Result<Map<String, Value>, UsersError> {
    let mut claims = Map::new();
    for (name, value) in pairs {
        if claims.insert(name.clone(), value).is_some() {
            return Err(format!("claim `{name}` is given twice").into());
        }
    }
    Ok(claims)
}

/// Adds `new` to the store with the password `password` yields; that is asked for only
/// once the username and subject are known to be free.
///
/// # Errors
/// When the username or subject is taken or empty, the password is refused, or the store fails.
pub async fn add(
    store: &dyn UserStore,
    new: NewUser,
    password: impl FnOnce() -> Result<Secret, UsersError>,
    rng: &Rng,
) -> Result<User, UsersError> {
    if new.username.is_empty() {
        return Err("the username is empty".into());
    }
    // `put_user` replaces a user with the same name: refuse instead of overwriting.
    if store.user_by_username(&new.username).await?.is_some() {
        return Err(
            format!("user `{}` already exists; use `tessera users set-password`", new.username).into()
        );
    }
    let subject = match new.subject {
        Some(subject) if subject.is_empty() => {
            return Err("the subject is empty; leave --subject out to have one generated".into());
        }
        // One `sub` per person: the store does not enforce it, so check here.
        Some(subject) => match store.user_by_subject(&subject).await? {
            Some(other) => {
                return Err(format!("subject `{subject}` belongs to user `{}`", other.username).into());
            }
            None => subject,
        },
        None => rng.identifier(),
    };
    let password = checked(password()?)?;
    let user = User {
        subject,
        username: new.username,
        password_hash: password::hash_password(password.expose(), rng)?,
        claims: new.claims,
    };
    store.put_user_from(&user, Source::Cli).await?;
    Ok(user)
}

/// Removes `username` from the store and revokes everything issued to it (grants,
/// refresh tokens, sessions, consents). A user the configuration declares would be
/// written back by the next start: refused, naming the file.
///
/// # Errors
/// When the user does not exist, is in the configuration, or the store fails.
pub async fn remove(
    store: &dyn UserStore,
    config: &Config,
    username: &str,
    now: Timestamp,
) -> Result<User, UsersError> {
    if named_in_config(config, username) {
        return Err(format!(
            "user `{username}` is declared in {}: delete its [[users]] entry there; the next start removes it",
            config.source
        )
        .into());
    }
    store.remove_user(username, now).await?.ok_or_else(|| format!("no user `{username}`").into())
}

/// The user called `username`.
///
/// # Errors
/// When there is none, or the store fails.
pub async fn find(store: &dyn UserStore, username: &str) -> Result<User, UsersError> {
    store.user_by_username(username).await?.ok_or_else(|| format!("no user `{username}`").into())
}

/// Replaces the password of `username`, keeping its subject and claims.
///
/// # Errors
/// When the user does not exist, the password is refused, or the store fails.
pub async fn set_password(
    store: &dyn UserStore,
    username: &str,
    password: impl FnOnce() -> Result<Secret, UsersError>,
    rng: &Rng,
) -> Result<User, UsersError> {
    let Some(mut user) = store.user_by_username(username).await? else {
        return Err(format!("no user `{username}`; use `tessera users add`").into());
    };
    let password = checked(password()?)?;
    user.password_hash = password::hash_password(password.expose(), rng)?;
    store.put_user(&user).await?;
    Ok(user)
}

/// One line per user, ordered by username: username, subject and claim names,
/// tab-separated (claim names comma-separated). Never the password hash.
///
/// # Errors
/// When the store fails.
pub async fn list(store: &dyn UserStore) -> Result<Vec<String>, UsersError> {
    Ok(store.users().await?.iter().map(line).collect())
}

fn line(user: &User) -> String {
    let claims: Vec<&str> = user.claims.keys().map(String::as_str).collect();
    format!("{}\t{}\t{}", user.username, user.subject, claims.join(","))
}

/// Whether `username` is a `[[users]]` entry of `config`, which every start writes back
/// over the store's copy.
#[must_use]
pub fn named_in_config(config: &Config, username: &str) -> bool {
    config.users.iter().any(|seed| seed.username == username)
}

/// Reads a new password from `source`.
///
/// # Errors
/// When reading fails or the two prompted entries differ.
pub fn read_password(source: PasswordSource) -> Result<Secret, UsersError> {
    let stdin = std::io::stdin();
    if source == PasswordSource::Prompt && stdin.is_terminal() {
        let first = rpassword::prompt_password("New password: ")?;
        let second = rpassword::prompt_password("Repeat the new password: ")?;
        if first != second {
            return Err("the two passwords differ".into());
        }
        return Ok(Secret::new(first));
    }
    password_line(&mut stdin.lock())
}

/// The first line of `input` without its line ending; the rest of it is left unread.
fn password_line(input: &mut impl std::io::BufRead) -> Result<Secret, UsersError> {
    let mut line = String::new();
    input.read_line(&mut line)?;
    // Only the line ending goes: spaces may be part of the password.
    let password =
        line.strip_suffix('\n').map_or(line.as_str(), |rest| rest.strip_suffix('\r').unwrap_or(rest));
    Ok(Secret::new(password))
}

/// Applies the password policy.
fn checked(password: Secret) -> Result<Secret, UsersError> {
    if password.expose().is_empty() {
        return Err("the password is empty".into());
    }
    if password.expose().chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!("the password is shorter than {MIN_PASSWORD_CHARS} characters").into());
    }
    Ok(password)
}

#[cfg(test)]
mod tests {
    use tessera_core::store::memory::MemoryStore;

    use super::*;

    fn given(password: &str) -> impl FnOnce() -> Result<Secret, UsersError> {
        let password = Secret::new(password);
        move || Ok(password)
    }

    fn alice() -> NewUser {
        NewUser { username: "alice".to_owned(), ..NewUser::default() }
    }

    #[tokio::test]
    async fn an_added_user_gets_a_generated_subject_and_an_argon2id_hash() {
        let store = MemoryStore::default();
        let user = add(&store, alice(), given("correct horse"), &Rng::default()).await.unwrap();
        assert!(!user.subject.is_empty());
        assert!(password::is_argon2id_hash(&user.password_hash));
        let stored = store.user_by_username("alice").await.unwrap().unwrap();
        assert!(password::verify_password("correct horse", &stored.password_hash));
    }

    #[tokio::test]
    async fn adding_an_existing_username_is_refused_before_asking_for_a_password() {
        let store = MemoryStore::default();
        add(&store, alice(), given("correct horse"), &Rng::default()).await.unwrap();
        let error =
            add(&store, alice(), || panic!("asked for a password"), &Rng::default()).await.unwrap_err();
        assert!(error.to_string().contains("already exists"), "{error}");
    }

    #[tokio::test]
    async fn adding_with_another_users_subject_is_refused() {
        let store = MemoryStore::default();
        let first = NewUser { subject: Some("s1".to_owned()), ..alice() };
        add(&store, first, given("correct horse"), &Rng::default()).await.unwrap();
        let second =
            NewUser { username: "bob".to_owned(), subject: Some("s1".to_owned()), ..NewUser::default() };
        let error = add(&store, second, given("correct horse"), &Rng::default()).await.unwrap_err();
        assert!(error.to_string().contains("belongs to user `alice`"), "{error}");
    }

    #[tokio::test]
    async fn short_and_empty_passwords_are_refused() {
        let store = MemoryStore::default();
        for password in ["", "seven77", "ünïcödé"] {
            assert!(add(&store, alice(), given(password), &Rng::default()).await.is_err(), "{password:?}");
        }
        assert!(store.users().await.unwrap().is_empty());
        // Eight characters, even if more bytes, is enough.
        add(&store, alice(), given("ünïcödé!"), &Rng::default()).await.unwrap();
    }

    #[tokio::test]
    async fn set_password_keeps_subject_and_claims() {
        let store = MemoryStore::default();
        let claims = claims_from(vec![parse_claim("name=Alice").unwrap()]).unwrap();
        let before =
            add(&store, NewUser { claims, ..alice() }, given("old password"), &Rng::default()).await.unwrap();
        let after = set_password(&store, "alice", given("new password"), &Rng::default()).await.unwrap();
        assert_eq!(after.subject, before.subject);
        assert_eq!(after.claims, before.claims);
        assert!(!password::verify_password("old password", &after.password_hash));
        assert!(password::verify_password("new password", &after.password_hash));
    }

    #[tokio::test]
    async fn set_password_for_an_unknown_user_is_refused_before_asking_for_a_password() {
        let store = MemoryStore::default();
        let error = set_password(&store, "nobody", || panic!("asked"), &Rng::default()).await.unwrap_err();
        assert!(error.to_string().contains("no user `nobody`"), "{error}");
    }

    #[tokio::test]
    async fn a_listed_user_shows_username_subject_and_claim_names_only() {
        let store = MemoryStore::default();
        let claims = claims_from(vec![
            parse_claim("name=Alice").unwrap(),
            parse_claim("email_verified=true").unwrap(),
        ])
        .unwrap();
        let new = NewUser { subject: Some("a1".to_owned()), claims, ..alice() };
        add(&store, new, given("correct horse"), &Rng::default()).await.unwrap();
        assert_eq!(list(&store).await.unwrap(), ["alice\ta1\temail_verified,name"]);
    }

    #[test]
    fn claims_are_strings_except_true_and_false() {
        assert_eq!(parse_claim("email_verified=true").unwrap().1, Value::Bool(true));
        assert_eq!(parse_claim("email_verified=false").unwrap().1, Value::Bool(false));
        assert_eq!(parse_claim("nickname=a=b").unwrap(), ("nickname".to_owned(), Value::from("a=b")));
        assert_eq!(parse_claim("nickname=").unwrap().1, Value::from(""));
        for bad in ["nickname", "=x", "sub=x"] {
            assert!(parse_claim(bad).is_err(), "{bad}");
        }
        assert!(claims_from(vec![parse_claim("a=1").unwrap(), parse_claim("a=2").unwrap()]).is_err());
    }

    #[test]
    fn a_password_line_loses_its_line_ending_only() {
        let read = |input: &str| password_line(&mut input.as_bytes()).unwrap().expose().to_owned();
        assert_eq!(read(" spaced pass \n"), " spaced pass ");
        assert_eq!(read("windows\r\nsecond line\n"), "windows");
        assert_eq!(read("no newline"), "no newline");
        assert_eq!(read(""), "");
    }
}
