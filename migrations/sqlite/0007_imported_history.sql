-- Certificates and revocations a CA issued before this gateway took it over (`certs import`,
-- `ca import-crl`), and CA certificates one of our CAs issued, recorded when one is revoked.
-- Kept apart from `certificates` (what this gateway issued, each with its chained `issued`
-- event); read by the CRL and OCSP of the CA named in `ca`. Times are Unix seconds.
-- not_after / der / sha256 NULL: a revocation-only row (from a CRL or index.txt) whose
--   certificate was never seen; it stays on the CRL for as long as the CA issues CRLs.
-- source: import (certificate files, index.txt), crl (a CRL entry), ca (a CA certificate).
CREATE TABLE imported_certificates (
    ca                TEXT NOT NULL,
    serial            TEXT NOT NULL,
    subject           TEXT,
    not_after         BIGINT,
    status            TEXT NOT NULL,
    revoked_at        BIGINT,
    revocation_reason TEXT,
    invalidity_date   BIGINT,
    sha256            TEXT,
    der               BLOB,
    source            TEXT NOT NULL,
    imported_at       BIGINT NOT NULL,
    PRIMARY KEY (ca, serial)
);
CREATE INDEX imported_certificates_serial ON imported_certificates(serial);
CREATE INDEX imported_certificates_status ON imported_certificates(ca, status);
