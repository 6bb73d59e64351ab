-- Human sign-in: codes, refresh tokens, grants, sessions, pending requests, consent,
-- throttling and shared secrets. Times are unix seconds (BIGINT), flags BIGINT 0/1
-- (sqlx Any cannot decode a SQLite BOOLEAN), documents JSON text. Only the secret
-- value column differs from the SQLite migration (BYTEA vs BLOB).

-- Sign-in finds the user of a session by subject.
CREATE INDEX users_subject ON users (subject);

-- `document` is the JSON PendingGrant; `consumed_at` is set by the one redemption.
CREATE TABLE authorization_codes (
    code_hash   TEXT PRIMARY KEY,
    grant_id    TEXT NOT NULL,
    document    TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    consumed_at BIGINT
);
CREATE INDEX authorization_codes_grant_id ON authorization_codes (grant_id);
CREATE INDEX authorization_codes_expires_at ON authorization_codes (expires_at);

-- `document` is the JSON RefreshRecord; `used_at` is set by the one rotation.
CREATE TABLE refresh_tokens (
    token_hash      TEXT PRIMARY KEY,
    grant_id        TEXT NOT NULL,
    document        TEXT NOT NULL,
    expires_at      BIGINT NOT NULL,
    idle_expires_at BIGINT,
    used_at         BIGINT,
    revoked         BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX refresh_tokens_grant_id ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

-- Which grant each access token descends from, so revoking the grant revokes it.
CREATE TABLE issued_access_tokens (
    jti        TEXT PRIMARY KEY,
    grant_id   TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX issued_access_tokens_grant_id ON issued_access_tokens (grant_id);
CREATE INDEX issued_access_tokens_expires_at ON issued_access_tokens (expires_at);

-- Revoked grants, kept until everything issued from them has expired: anything
-- stored for the grant while the revocation ran is refused by this row.
CREATE TABLE revoked_grants (
    grant_id   TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX revoked_grants_expires_at ON revoked_grants (expires_at);

CREATE TABLE sessions (
    session_hash TEXT PRIMARY KEY,
    document     TEXT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE pending_requests (
    key        TEXT PRIMARY KEY,
    document   TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX pending_requests_expires_at ON pending_requests (expires_at);

-- Never expires: consent lasts until replaced.
CREATE TABLE consents (
    subject   TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scopes    TEXT NOT NULL,
    PRIMARY KEY (subject, client_id)
);

CREATE TABLE login_failures (
    key            TEXT PRIMARY KEY,
    failures       BIGINT NOT NULL,
    window_ends_at BIGINT NOT NULL
);
CREATE INDEX login_failures_window_ends_at ON login_failures (window_ends_at);

CREATE TABLE shared_secrets (
    name  TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);
