//! Access tokens: RFC 9068 JWTs, or opaque reference tokens kept hashed in the store.

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// `aud`: one string, or an array when several APIs are reached (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    /// The audience of a token for these APIs.
    #[must_use]
    pub fn of(mut names: Vec<String>) -> Self {
        if names.len() == 1 { Self::One(names.remove(0)) } else { Self::Many(names) }
    }

    /// The audiences as a list.
    #[must_use]
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Self::One(name) => vec![name.clone()],
            Self::Many(names) => names.clone(),
        }
    }

    /// Whether `name` is one of the audiences.
    #[must_use]
    pub fn contains(&self, name: &str) -> bool {
        match self {
            Self::One(one) => one == name,
            Self::Many(names) => names.iter().any(|n| n == name),
        }
    }
}

/// The claims of a JWT access token (RFC 9068 §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Audience,
    pub exp: Timestamp,
    pub iat: Timestamp,
    pub jti: String,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The acting party of a delegated token (RFC 8693 §4.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<serde_json::Value>,
    /// The key the token is bound to (RFC 7800, RFC 9449 §6.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<crate::sender::Confirmation>,
}

/// An access token as handed to the client.
#[derive(Debug)]
pub struct IssuedAccessToken {
    /// The token (a JWT, or the opaque value of a reference token).
    pub value: crate::secret::Secret,
    pub expires_in: i64,
    pub jti: String,
    /// `Bearer`, or `DPoP` when bound to a DPoP key (RFC 9449 §5).
    pub token_type: &'static str,
}

use super::issuer::TokenIssuer;
use crate::OAuthError;
use crate::model::{AccessTokenFormat, Client, ClientId, GrantId};
use crate::secret::{Secret, SecretHash};
use crate::store::TokenRecord;

/// What an access token says of the grant it is issued under (a grant's `Issue`).
#[derive(Debug, Clone, Copy)]
pub struct AccessTokenContent<'a> {
    /// `sub`: the user, or the client itself for client credentials (RFC 9068 §2.2).
    pub subject: &'a str,
    pub scopes: &'a [String],
    /// Empty: the token is for the userinfo endpoint.
    pub audience: &'a [String],
    /// The `act` claim of a delegated token (RFC 8693 §4.1).
    pub act: Option<&'a serde_json::Value>,
    /// The grant the token belongs to, which its `jti` names ([`new_jti`]).
    pub grant_id: Option<&'a GrantId>,
}

/// Mints the access token for `content`, as a JWT or a reference token per the client.
/// A JWT writes nothing to the store.
///
/// # Errors
/// `server_error` when no key signs or the store fails.
pub async fn mint(
    issuer: &TokenIssuer<'_>,
    client: &Client,
    content: &AccessTokenContent<'_>,
    confirmation: Option<crate::sender::Confirmation>,
    now: Timestamp,
) -> Result<IssuedAccessToken, OAuthError> {
    let lifetime = client.access_token_lifetime.unwrap_or(issuer.settings.tokens.access_token_lifetime);
    let format = client.access_token_format.unwrap_or(issuer.settings.tokens.access_token_format);
    let jti = new_jti(issuer.rng, content.grant_id);
    let scope = (!content.scopes.is_empty()).then(|| content.scopes.join(" "));
    // With identity scopes only, the token is for the userinfo endpoint (RFC 9068 §3).
    let audience = if content.audience.is_empty() {
        vec![issuer.settings.endpoint("/userinfo")]
    } else {
        content.audience.to_vec()
    };
    // Reference tokens carry no `cnf` yet: they are issued as plain Bearer tokens, which
    // RFC 9449 §5 allows (the client learns it from `token_type`).
    let mut token_type = "Bearer";
    let value = match format {
        AccessTokenFormat::Jwt => {
            // RFC 8705 §3: a certificate-bound token stays `Bearer`; only DPoP changes it.
            if confirmation.as_ref().is_some_and(|cnf| cnf.jkt.is_some()) {
                token_type = "DPoP";
            }
            let claims = AccessTokenClaims {
                iss: issuer.settings.issuer.clone(),
                sub: content.subject.to_owned(),
                aud: Audience::of(audience),
                exp: now + lifetime,
                iat: now,
                jti: jti.clone(),
                client_id: client.client_id.to_string(),
                scope,
                act: content.act.cloned(),
                cnf: confirmation,
            };
            let keys = issuer.keys.key_set(now).await?;
            let signer = keys.signer_for(client.access_token_signing_alg)?;
            super::jws::sign_access_token(&claims, signer, issuer.rng)?
        }
        AccessTokenFormat::Reference => {
            let value = issuer.rng.token();
            let record = TokenRecord {
                jti: jti.clone(),
                client_id: client.client_id.clone(),
                subject: content.subject.to_owned(),
                scope: content.scopes.to_vec(),
                audience,
                issued_at: now,
                expires_at: now + lifetime,
            };
            issuer.store.put_reference_token(&SecretHash::of(&value), &record).await?;
            value
        }
    };
    Ok(IssuedAccessToken { value: Secret::new(value), expires_in: lifetime, jti, token_type })
}

/// A fresh `jti` (RFC 9068 §2.2). A token of a user's grant carries the grant in
/// it, `{grant}.{random}`, so revoking the grant (a reused code or refresh token,
/// RFC 6749 §4.1.2, RFC 9700 §4.14.2) revokes the token without a stored row per
/// token: `is_revoked` judges it by its grant when it is presented.
pub(crate) fn new_jti(rng: &crate::random::Rng, grant_id: Option<&GrantId>) -> String {
    let random = rng.identifier();
    match grant_id {
        Some(grant_id) => format!("{grant_id}.{random}"),
        None => random,
    }
}

/// The grant a `jti` names, if it was minted for a user's grant (see [`new_jti`]).
/// Whether the token's client, and for a user's grant its user, are still registered:
/// what the configuration no longer declares is removed at start, and a token it was
/// issued stops working with it, however long it would otherwise live.
async fn parties_exist(
    issuer: &TokenIssuer<'_>,
    client_id: &str,
    subject: &str,
    jti: &str,
) -> Result<bool, OAuthError> {
    if issuer.store.client(&ClientId(client_id.to_owned())).await?.is_none() {
        return Ok(false);
    }
    // Only a user's grant carries its grant in the `jti`; a client's own token names the
    // client as `sub`.
    if grant_of(jti).is_some() && issuer.store.user_by_subject(subject).await?.is_none() {
        return Ok(false);
    }
    Ok(true)
}

pub(crate) fn grant_of(jti: &str) -> Option<crate::model::GrantId> {
    jti.split_once('.').map(|(grant_id, _)| crate::model::GrantId::from(grant_id))
}

/// An access token Tessera issued, whichever its format, as found at introspection
/// or revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedToken {
    pub jti: String,
    pub client_id: String,
    pub subject: String,
    pub scope: Vec<String>,
    pub audience: Vec<String>,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    /// `None` for a JWT; the store key for a reference token.
    pub reference: Option<SecretHash>,
    /// The acting party, for a delegated JWT (RFC 8693 §4.1).
    pub act: Option<serde_json::Value>,
    /// The key a JWT is bound to.
    pub cnf: Option<crate::sender::Confirmation>,
}

impl ResolvedToken {
    fn from_record(record: TokenRecord, hash: SecretHash) -> Self {
        Self {
            jti: record.jti,
            client_id: record.client_id.0,
            subject: record.subject,
            scope: record.scope,
            audience: record.audience,
            issued_at: record.issued_at,
            expires_at: record.expires_at,
            reference: Some(hash),
            act: None,
            cnf: None,
        }
    }
}

/// Finds the live access token behind `token`: a JWT signed by a published key with
/// this issuer, unexpired and not revoked; or a stored, unexpired reference token.
///
/// # Errors
/// `server_error` when keys or store fail.
pub async fn resolve(
    issuer: &TokenIssuer<'_>,
    token: &str,
    now: Timestamp,
) -> Result<Option<ResolvedToken>, OAuthError> {
    if token.bytes().filter(|&b| b == b'.').count() != 2 {
        let hash = SecretHash::of(token);
        let Some(record) = issuer.store.reference_token(&hash, now).await? else { return Ok(None) };
        if issuer.store.is_revoked(&record.jti, grant_of(&record.jti).as_ref()).await?
            || !parties_exist(issuer, record.client_id.as_str(), &record.subject, &record.jti).await?
        {
            return Ok(None);
        }
        return Ok(Some(ResolvedToken::from_record(record, hash)));
    }
    let keys = issuer.keys.key_set(now).await?;
    let Ok(claims) = super::jws::verify_own::<AccessTokenClaims>(token, &keys, "at+jwt") else {
        return Ok(None);
    };
    if claims.iss != issuer.settings.issuer || claims.exp <= now {
        return Ok(None);
    }
    if issuer.store.is_revoked(&claims.jti, grant_of(&claims.jti).as_ref()).await?
        || !parties_exist(issuer, &claims.client_id, &claims.sub, &claims.jti).await?
    {
        return Ok(None);
    }
    Ok(Some(ResolvedToken {
        jti: claims.jti,
        client_id: claims.client_id,
        subject: claims.sub,
        scope: claims.scope.map(|s| s.split(' ').map(str::to_owned).collect()).unwrap_or_default(),
        audience: claims.aud.to_vec(),
        issued_at: claims.iat,
        expires_at: claims.exp,
        reference: None,
        act: claims.act,
        cnf: claims.cnf,
    }))
}
