-- Revocation state per CA (SPEC §3, §7.2). One row per CA, created on first use.
-- crl_number: the last CRL number handed out (RFC 5280 §5.2.3: monotonically increasing);
--   taken with UPDATE … RETURNING so concurrent nodes never reuse a number.
-- revision: bumped in the same transaction as every revocation or reinstatement, so a node
--   can tell whether the stored CRL (built at crl_revision) still reflects the database.
-- der_number: the number of the stored CRL (der); a CRL is only replaced by a higher number.
CREATE TABLE crl_state (
    ca           TEXT PRIMARY KEY,
    crl_number   BIGINT NOT NULL DEFAULT 0,
    revision     BIGINT NOT NULL DEFAULT 0,
    crl_revision BIGINT,
    der_number   BIGINT,
    this_update  BIGINT,
    next_update  BIGINT,
    der          BYTEA
);
