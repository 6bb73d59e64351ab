//! ID tokens (OpenID Connect Core §2, §3.1.3.6).

use serde::{Deserialize, Serialize};

use super::issuer::TokenIssuer;
use super::jws;
use crate::mfa::levels::{Level, amr};
use crate::{OAuthError, Timestamp};

/// The claims of an ID token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: Timestamp,
    pub iat: Timestamp,
    pub auth_time: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// `{grant}.{random}` as in access tokens (RFC 7519 §4.1.7), so a token exchange
    /// can tie what it makes from this ID token to the grant (RFC 8693 §2.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// How the user authenticated (RFC 8176).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// The authentication level reached (OpenID Connect Core §2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
}

/// What an ID token says about the user's authentication.
#[derive(Debug, Clone)]
pub struct Authentication<'a> {
    pub subject: &'a str,
    pub auth_time: Timestamp,
    pub nonce: Option<&'a str>,
    pub sid: &'a str,
    /// The grant the token is issued under.
    pub grant_id: &'a crate::model::GrantId,
    /// How the user authenticated (RFC 8176); empty: a password (grants from before
    /// second factors existed).
    pub amr: &'a [String],
    /// The `acr` to state; `None`: the level `amr` reached.
    pub acr: Option<&'a str>,
}

/// Mints an ID token for `client_id`, with `at_hash` of the access token issued beside it,
/// signed with `algorithm` (the client's `id_token_signed_response_alg`; `None`: the
/// default key).
///
/// # Errors
/// `server_error` when no key signs.
pub async fn mint(
    issuer: &TokenIssuer<'_>,
    client_id: &str,
    algorithm: Option<super::SigningAlgorithm>,
    authentication: &Authentication<'_>,
    access_token: &str,
    now: Timestamp,
) -> Result<String, OAuthError> {
    let keys = issuer.keys.key_set(now).await?;
    let signer = keys.signer_for(algorithm)?;
    let claims = IdTokenClaims {
        iss: issuer.settings.issuer.clone(),
        sub: authentication.subject.to_owned(),
        aud: client_id.to_owned(),
        exp: now + issuer.settings.tokens.id_token_lifetime,
        iat: now,
        auth_time: authentication.auth_time,
        nonce: authentication.nonce.map(str::to_owned),
        at_hash: Some(signer.algorithm().half_hash(access_token)),
        sid: Some(authentication.sid.to_owned()),
        jti: Some(super::access_token::new_jti(issuer.rng, Some(authentication.grant_id))),
        amr: if authentication.amr.is_empty() {
            vec![amr::PASSWORD.to_owned()]
        } else {
            authentication.amr.to_vec()
        },
        acr: Some(
            authentication.acr.map_or_else(|| Level::of(authentication.amr).acr().to_owned(), str::to_owned),
        ),
    };
    Ok(jws::sign_id_token(&claims, signer, issuer.rng)?)
}

/// Reads an ID token this server issued, even expired (for `id_token_hint`).
///
/// # Errors
/// `invalid_request` when it is not a valid ID token of this issuer.
pub async fn read_hint(issuer: &TokenIssuer<'_>, token: &str) -> Result<IdTokenClaims, OAuthError> {
    let keys = issuer.keys.key_set(issuer.clock.now()).await?;
    let claims: IdTokenClaims = jws::verify_own(token, &keys, "JWT")
        .map_err(|_| OAuthError::invalid_request("id_token_hint is not an ID token of this server"))?;
    if claims.iss != issuer.settings.issuer {
        return Err(OAuthError::invalid_request("id_token_hint is from another issuer"));
    }
    Ok(claims)
}
