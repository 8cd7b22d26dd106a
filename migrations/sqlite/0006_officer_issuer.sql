-- Officers are identified by issuer and serial, never by a hash of the certificate (an ECDSA
-- signature can be re-encoded with another fingerprint). `issuer` is the issuer DN as RFC 4514
-- text; rows registered before this migration get the officers CA's subject when the gateway
-- next starts with that CA loaded (until then they match no certificate).
ALTER TABLE officers ADD COLUMN issuer TEXT NOT NULL DEFAULT '';
CREATE INDEX officers_status ON officers (status);
