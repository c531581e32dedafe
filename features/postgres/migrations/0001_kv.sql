-- The records of the small stores (API keys, rule drafts and versions,
-- lists, audit trail, limits policy, webhooks, review items, …), each under
-- its key prefix (docs/architecture.md lists them). Keys sort bytewise.
CREATE TABLE kv (
    k          bytea PRIMARY KEY,
    v          bytea NOT NULL,
    expires_at timestamptz
);
