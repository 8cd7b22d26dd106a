-- Tokens, certificates and the hash-chained audit trail (SPEC §9). Times are Unix seconds.
CREATE TABLE tokens (
    id              TEXT PRIMARY KEY,
    created_at      BIGINT NOT NULL,
    handler         TEXT NOT NULL,
    token_procedure TEXT NOT NULL,
    caller          TEXT NOT NULL,
    request_id      TEXT NOT NULL,
    profile         TEXT NOT NULL
);

CREATE TABLE certificates (
    serial            TEXT PRIMARY KEY,
    ca                TEXT NOT NULL,
    issuer            TEXT NOT NULL,
    subject           TEXT NOT NULL,
    sans              TEXT NOT NULL,
    not_before        BIGINT NOT NULL,
    not_after         BIGINT NOT NULL,
    purpose           TEXT NOT NULL,
    token_id          TEXT NOT NULL REFERENCES tokens(id),
    status            TEXT NOT NULL,
    revoked_at        BIGINT,
    revocation_reason TEXT,
    der               BYTEA NOT NULL,
    created_at        BIGINT NOT NULL
);
CREATE INDEX certificates_token ON certificates(token_id);
CREATE INDEX certificates_created ON certificates(created_at);
CREATE INDEX certificates_status ON certificates(ca, status);

CREATE TABLE audit (
    seq        BIGINT PRIMARY KEY,
    at         BIGINT NOT NULL,
    event      TEXT NOT NULL,
    actor      TEXT NOT NULL,
    request_id TEXT NOT NULL,
    detail     TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);

-- The head of the audit chain: one row, updated first in every audit transaction so that
-- concurrent writers (threads or nodes) queue on its row lock and the chain stays linear.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY,
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
