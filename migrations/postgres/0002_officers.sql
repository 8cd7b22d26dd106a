-- The officer registry (SPEC §4): client certificates issued from the `officers` CA and the
-- roles they hold. Looked up per request by certificate fingerprint, so a revocation takes
-- effect for the next request. Times are Unix seconds.
CREATE TABLE officers (
    serial      TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    roles       TEXT NOT NULL,
    status      TEXT NOT NULL,
    created     BIGINT NOT NULL,
    revoked     BIGINT
);
