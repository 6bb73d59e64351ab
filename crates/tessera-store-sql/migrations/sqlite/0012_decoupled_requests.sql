-- Device and CIBA requests get a table of their own with a state column: a decision is
-- one conditional statement (`UPDATE … WHERE state = 'pending'`) and a poll takes a
-- request whose state is decided. Live rows move here from pending_requests (keys
-- `device:…` and `ciba:…`, unchanged), their state read from the document's decision
-- (`pending` for one that has none readable: a poll then reports the damaged document
-- rather than taking it). The user-code and per-user index documents stay where they are.
CREATE TABLE decoupled_requests (
    key        TEXT PRIMARY KEY,
    state      TEXT NOT NULL,
    document   TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX decoupled_requests_expires_at ON decoupled_requests (expires_at);

INSERT INTO decoupled_requests (key, state, document, expires_at)
SELECT key,
       COALESCE(CASE WHEN json_valid(document) THEN json_extract(document, '$.decision.status') END, 'pending'),
       document,
       expires_at
FROM pending_requests
WHERE substr(key, 1, 7) = 'device:' OR substr(key, 1, 5) = 'ciba:';

DELETE FROM pending_requests WHERE substr(key, 1, 7) = 'device:' OR substr(key, 1, 5) = 'ciba:';
