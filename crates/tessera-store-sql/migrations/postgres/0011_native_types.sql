-- PostgreSQL's own types: documents and lists become JSONB, times TIMESTAMPTZ, flags
-- BOOLEAN. The columns were TEXT, BIGINT unix seconds and BIGINT 0/1 while both
-- backends went through sqlx's `Any` driver; PostgreSQL now has its own pool and
-- schema (SQLite keeps its own migrations, unchanged). Every live row is converted in
-- place. `poll_interval` and `last_step` stay BIGINT: a number of seconds and a TOTP
-- time-step counter, not points in time.

-- Indexes over columns whose type changes, made again below.
DROP INDEX sessions_subject;
DROP INDEX refresh_tokens_family_start;

ALTER TABLE clients ALTER COLUMN document TYPE JSONB USING document::jsonb;
ALTER TABLE resources ALTER COLUMN document TYPE JSONB USING document::jsonb;
ALTER TABLE users ALTER COLUMN claims TYPE JSONB USING claims::jsonb;

ALTER TABLE signing_keys
    ALTER COLUMN sealed TYPE BOOLEAN USING sealed <> 0,
    ALTER COLUMN created_at TYPE TIMESTAMPTZ USING to_timestamp(created_at),
    ALTER COLUMN activates_at TYPE TIMESTAMPTZ USING to_timestamp(activates_at),
    ALTER COLUMN retires_at TYPE TIMESTAMPTZ USING to_timestamp(retires_at),
    ALTER COLUMN expires_at TYPE TIMESTAMPTZ USING to_timestamp(expires_at);

ALTER TABLE replay_cache ALTER COLUMN expires_at TYPE TIMESTAMPTZ USING to_timestamp(expires_at);

ALTER TABLE reference_tokens
    ALTER COLUMN scope TYPE JSONB USING scope::jsonb,
    ALTER COLUMN audience TYPE JSONB USING audience::jsonb,
    ALTER COLUMN issued_at TYPE TIMESTAMPTZ USING to_timestamp(issued_at),
    ALTER COLUMN expires_at TYPE TIMESTAMPTZ USING to_timestamp(expires_at);

ALTER TABLE revoked_jtis ALTER COLUMN expires_at TYPE TIMESTAMPTZ USING to_timestamp(expires_at);

ALTER TABLE authorization_codes
    ALTER COLUMN document TYPE JSONB USING document::jsonb,
    ALTER COLUMN expires_at TYPE TIMESTAMPTZ USING to_timestamp(expires_at),
    ALTER COLUMN consumed_at TYPE TIMESTAMPTZ USING to_timestamp(consumed_at);

ALTER TABLE refresh_tokens ALTER COLUMN starts_family DROP DEFAULT;
ALTER TABLE refresh_tokens
    ALTER COLUMN document TYPE JSONB USING document::jsonb,
    ALTER COLUMN expires_at TYPE TIMESTAMPTZ USING to_timestamp(expires_at),
    ALTER COLUMN idle_expires_at TYPE TIMESTAMPTZ USING to_timestamp(idle_expires_at),
    ALTER COLUMN used_at TYPE TIMESTAMPTZ USING to_timestamp(used_at),
    ALTER COLUMN starts_family TYPE BOOLEAN USING starts_family <> 0;
ALTER TABLE refresh_tokens ALTER COLUMN starts_family SET DEFAULT false;

ALTER TABLE revoked_grants ALTER COLUMN expires_at TYPE TIMESTAMPTZ USING to_timestamp(expires_at);

ALTER TABLE sessions
    ALTER COLUMN document TYPE JSONB USING document::jsonb,
    ALTER COLUMN expires_at TYPE TIMESTAMPTZ USING to_timestamp(expires_at);

ALTER TABLE pending_requests
    ALTER COLUMN document TYPE JSONB USING document::jsonb,
    ALTER COLUMN expires_at TYPE TIMESTAMPTZ USING to_timestamp(expires_at);

ALTER TABLE consents ALTER COLUMN scopes TYPE JSONB USING scopes::jsonb;

ALTER TABLE login_failures
    ALTER COLUMN window_ends_at TYPE TIMESTAMPTZ USING to_timestamp(window_ends_at);

ALTER TABLE totp_factors
    ALTER COLUMN sealed TYPE BOOLEAN USING sealed <> 0,
    ALTER COLUMN confirmed TYPE BOOLEAN USING confirmed <> 0,
    ALTER COLUMN created_at TYPE TIMESTAMPTZ USING to_timestamp(created_at);

-- A passkey's `credential` stays TEXT: webauthn-rs's serialization, handed back to it
-- byte for byte; the store never looks inside.
ALTER TABLE passkeys
    ALTER COLUMN created_at TYPE TIMESTAMPTZ USING to_timestamp(created_at),
    ALTER COLUMN last_used_at TYPE TIMESTAMPTZ USING to_timestamp(last_used_at);

ALTER TABLE poll_pace
    ALTER COLUMN last_poll TYPE TIMESTAMPTZ USING to_timestamp(last_poll),
    ALTER COLUMN slowed TYPE BOOLEAN USING slowed <> 0,
    ALTER COLUMN expires_at TYPE TIMESTAMPTZ USING to_timestamp(expires_at);

CREATE INDEX sessions_subject ON sessions ((document ->> 'subject'));
CREATE INDEX refresh_tokens_family_start ON refresh_tokens (grant_id) WHERE starts_family;
