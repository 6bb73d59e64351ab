-- A rotation no longer writes an index entry keyed by its grant (a page at a random
-- place in the file per refresh). Only the token that starts a family, the first one
-- stored for a grant, is indexed by grant: revoking the grant reads its expiry, which
-- every token of the family shares, to know how long to remember the revocation.
-- The per-token `revoked` flag goes: the grant's row in `revoked_grants` outlives every
-- token of the family and refuses them all (it was already read on every use).
ALTER TABLE refresh_tokens ADD COLUMN starts_family BIGINT NOT NULL DEFAULT 0;
UPDATE refresh_tokens SET starts_family = 1;
DROP INDEX refresh_tokens_grant_id;
CREATE INDEX refresh_tokens_family_start ON refresh_tokens (grant_id) WHERE starts_family = 1;
ALTER TABLE refresh_tokens DROP COLUMN revoked;
