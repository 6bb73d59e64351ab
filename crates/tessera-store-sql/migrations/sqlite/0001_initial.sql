-- Times are unix seconds (BIGINT); documents and lists are JSON text.
CREATE TABLE clients (
    client_id TEXT PRIMARY KEY,
    document  TEXT NOT NULL
);

CREATE TABLE resources (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    document TEXT NOT NULL
);

CREATE TABLE users (
    username      TEXT PRIMARY KEY,
    subject       TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    claims        TEXT NOT NULL
);

CREATE TABLE signing_keys (
    generation   BIGINT PRIMARY KEY,
    kid          TEXT NOT NULL UNIQUE,
    algorithm    TEXT NOT NULL,
    private_key  BLOB NOT NULL,
    sealed       BIGINT NOT NULL, -- 1 when encrypted (sqlx Any has no SQLite bool)
    created_at   BIGINT NOT NULL,
    activates_at BIGINT NOT NULL,
    retires_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);

CREATE TABLE replay_cache (
    key        TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX replay_cache_expires_at ON replay_cache (expires_at);

CREATE TABLE reference_tokens (
    token_hash TEXT PRIMARY KEY,
    jti        TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    subject    TEXT NOT NULL,
    scope      TEXT NOT NULL,
    audience   TEXT NOT NULL,
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX reference_tokens_expires_at ON reference_tokens (expires_at);

CREATE TABLE revoked_jtis (
    jti        TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX revoked_jtis_expires_at ON revoked_jtis (expires_at);
