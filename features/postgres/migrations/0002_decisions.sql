-- The decision log: one row per decided transaction, the system of record
-- of every answer the engine gave. Written by features/postgres
-- (decisions*.go) only; auditors read it directly.

-- decisions_seq numbers decisions in the order they were committed
-- (engine.Record.Seq). Numbers are drawn through draw_decision_seqs below,
-- never with nextval directly. Gaps are normal (a retried transaction id
-- draws a number it does not use).
CREATE SEQUENCE decisions_seq AS bigint;

CREATE TABLE decisions (
    -- seq: the commit order (engine.Record.Seq), from decisions_seq.
    seq             bigint      NOT NULL,
    -- decision_id: the decision's id ("dec_..."), as returned to the gateway.
    decision_id     text        NOT NULL,
    -- transaction_id: the gateway's id of the payment; decided once
    -- (decision_txids guards it).
    transaction_id  text        NOT NULL,
    -- account_id, card_fingerprint, merchant_id: the payment's paying
    -- account, card fingerprint (never a card number) and merchant; '' when
    -- the gateway sent none.
    account_id      text        NOT NULL DEFAULT '',
    card_fingerprint text       NOT NULL DEFAULT '',
    merchant_id     text        NOT NULL DEFAULT '',
    -- outcome: allow, challenge or deny.
    outcome         text        NOT NULL,
    -- score: the summed score of the matched active rules.
    score           double precision NOT NULL,
    -- degraded: the engine decided without everything it normally uses;
    -- degraded_cause says why as a stable code ('' when not degraded).
    degraded        boolean     NOT NULL DEFAULT false,
    degraded_cause  text        NOT NULL DEFAULT '',
    -- ruleset_version: the published rule set version that decided (0 for
    -- an unversioned set).
    ruleset_version bigint      NOT NULL,
    -- evaluated_at: when the engine decided; the partition key.
    evaluated_at    timestamptz NOT NULL,
    -- request_hash: the content hash of the payment, to tell a retry from
    -- a different payment reusing a transaction id.
    request_hash    text        NOT NULL DEFAULT '',
    -- xid: the id of the PostgreSQL transaction that wrote the row. Readers
    -- following seq use it to skip rows while a transaction that could still
    -- commit a lower seq is open (see ScanRecords). Kept when a row moves
    -- between partitions.
    xid             xid8        NOT NULL DEFAULT pg_current_xact_id(),
    -- record: the full explanation (input, request body, feature values,
    -- rule results, limits, thresholds) as a versioned JSON document:
    -- {"v":1, ...}; "request" is the request body as received, in base64.
    -- Labels are not in it.
    record          jsonb       NOT NULL,
    -- labels: the feedback labels attached later, oldest first:
    -- [{"label","note","source","created_at"}].
    labels          jsonb       NOT NULL DEFAULT '[]'
) PARTITION BY RANGE (evaluated_at);

-- One partition per calendar month (UTC), named decisions_pYYYYMM, created
-- ahead by the engine; rows of a month without a partition land here until
-- it is created, when they move to it.
CREATE TABLE decisions_default PARTITION OF decisions DEFAULT;

CREATE INDEX decisions_transaction_id ON decisions (transaction_id);
CREATE INDEX decisions_decision_id ON decisions (decision_id);
CREATE INDEX decisions_seq_idx ON decisions (seq);
CREATE INDEX decisions_evaluated_at ON decisions (evaluated_at DESC, decision_id);
CREATE INDEX decisions_account ON decisions (account_id, evaluated_at DESC, decision_id);
CREATE INDEX decisions_card ON decisions (card_fingerprint, evaluated_at DESC, decision_id);

-- The idempotency guard: a unique index on a partitioned table must include
-- the partition key, so "one decision per transaction id" lives here. A row
-- is inserted in the same transaction as its decision and deleted with it
-- when its month is dropped.
CREATE TABLE decision_txids (
    -- transaction_id: the gateway's id of the payment.
    transaction_id text PRIMARY KEY,
    -- decision_id: the decision stored for it.
    decision_id    text        NOT NULL,
    -- evaluated_at: the decision's evaluated_at (its partition).
    evaluated_at   timestamptz NOT NULL
);
CREATE INDEX decision_txids_evaluated_at ON decision_txids (evaluated_at);

-- draw_decision_seqs assigns the calling transaction its xid and draws n
-- sequence numbers, both under one advisory lock. So a transaction that
-- draws a lower seq always has a lower xid, which is what lets a reader
-- trust "xid < the oldest running xid" to mean "no lower seq can still
-- appear". The lock is held for the draw only, not until commit.
CREATE FUNCTION draw_decision_seqs(n integer) RETURNS bigint[]
LANGUAGE plpgsql AS $$
DECLARE
    seqs bigint[];
BEGIN
    BEGIN
        PERFORM pg_advisory_lock(1919185777); -- 'rdsq'
        PERFORM pg_current_xact_id();
        SELECT array_agg(nextval('decisions_seq') ORDER BY i) INTO seqs FROM generate_series(1, n) AS i;
        PERFORM pg_advisory_unlock(1919185777);
    EXCEPTION WHEN query_canceled OR others THEN
        -- A session lock outlives the transaction: never leave it held.
        -- Unlocking a lock not held is only a warning.
        PERFORM pg_advisory_unlock(1919185777);
        RAISE;
    END;
    RETURN seqs;
END
$$;
