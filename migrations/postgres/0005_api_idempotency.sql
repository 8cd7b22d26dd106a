-- REST API idempotency keys (`Idempotency-Key` on POST /pgwy/api/softtokens). One row per caller
-- (scope: the officer) and key, inserted in the transaction that records the token, so a retry
-- finds the token's certificates instead of issuing twice, and two concurrent requests with one
-- key cannot both commit. request_hash: SHA-256 over the request without its password, so a key
-- reused for a different request is told apart. Times are Unix seconds.
CREATE TABLE api_idempotency (
    scope           TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    token_id        TEXT NOT NULL REFERENCES tokens(id),
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (scope, idempotency_key)
);

-- GET /pgwy/api/certificates pages newest first by (created_at, serial) and filters on expiry.
CREATE INDEX certificates_created_serial ON certificates(created_at, serial);
CREATE INDEX certificates_not_after ON certificates(not_after);
