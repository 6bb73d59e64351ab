-- Access tokens of a user's grant now carry the grant in their `jti`
-- (`{grant}.{random}`), so revoking the grant revokes them when they are presented
-- (`revoked_grants`), without a row written per token.
DROP TABLE issued_access_tokens;
