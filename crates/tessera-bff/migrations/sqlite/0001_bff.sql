-- The BFF's tables on SQLite (created idempotently at start).
CREATE TABLE IF NOT EXISTS bff_sessions (
    id_hash TEXT PRIMARY KEY,
    sid TEXT NOT NULL,
    sub TEXT NOT NULL,
    claims TEXT NOT NULL,
    id_token TEXT NOT NULL,
    access_token TEXT NOT NULL,
    refresh_token TEXT,
    -- The session's DPoP key (PKCS#8, base64url) when its tokens are DPoP-bound.
    dpop_key TEXT,
    access_issued_at BIGINT NOT NULL,
    access_expires_at BIGINT NOT NULL,
    refreshing_until BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS bff_sessions_sid ON bff_sessions (sid);
CREATE INDEX IF NOT EXISTS bff_sessions_sub ON bff_sessions (sub);
CREATE TABLE IF NOT EXISTS bff_logins (
    state TEXT PRIMARY KEY,
    verifier TEXT NOT NULL,
    nonce TEXT NOT NULL,
    return_url TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS bff_logins_expires ON bff_logins (expires_at);
CREATE TABLE IF NOT EXISTS bff_logout_jtis (
    jti TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
