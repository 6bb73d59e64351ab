-- The pace of device and CIBA polls (RFC 8628 §3.5), one row per polled request: one
-- upsert decides whether a poll came too soon and records it, so racing polls cannot
-- all pass. Earlier releases kept the pace as a JSON document in pending_requests
-- (key `pace:…`); those expire there on their own, and a request polled across the
-- upgrade starts a fresh pace. The same on both backends.
CREATE TABLE poll_pace (
    key           TEXT PRIMARY KEY,
    last_poll     BIGINT NOT NULL,
    poll_interval BIGINT NOT NULL,
    slowed        BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX poll_pace_expires_at ON poll_pace (expires_at);
