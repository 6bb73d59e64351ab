-- Second factors: authenticator apps (TOTP), recovery codes and passkeys, per user
-- (`subject`). Only the secret column differs from the SQLite migration (BYTEA vs
-- BLOB), and the sessions index's JSON expression.

-- One authenticator app per user. `secret` is sealed like signing keys when
-- `signing.encryption_key` is set. `last_step` is the newest accepted time step: a
-- code is accepted once (RFC 6238 §5.2). `confirmed` is 0 while an enrolment waits for
-- its first code.
CREATE TABLE totp_factors (
    subject    TEXT PRIMARY KEY,
    secret     BYTEA NOT NULL,
    sealed     BIGINT NOT NULL,
    confirmed  BIGINT NOT NULL,
    last_step  BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Unused recovery codes, by the SHA-256 of the code; using one deletes its row.
CREATE TABLE recovery_codes (
    subject   TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    PRIMARY KEY (subject, code_hash)
);

-- `credential` is the verified WebAuthn credential as JSON (public key, counter).
CREATE TABLE passkeys (
    credential_id TEXT PRIMARY KEY,
    subject       TEXT NOT NULL,
    name          TEXT NOT NULL,
    credential    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT
);
CREATE INDEX passkeys_subject ON passkeys (subject);

-- The account page lists a user's sessions, and removing a user ends them.
CREATE INDEX sessions_subject ON sessions ((document::jsonb ->> 'subject'));
