-- Signed API writes accepted, so that a signed body is accepted once (`[api] signed_writes`).
-- A body carries its signing time (`signedAt`); it is refused outside a window around the
-- gateway's clock, so a row is needed only until then (expires_at, Unix seconds) and is deleted
-- afterwards. body_sha256: SHA-256 of the exact signed body, lower-case hex; scope: the officer.
CREATE TABLE signed_bodies (
    scope       TEXT NOT NULL,
    body_sha256 TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (scope, body_sha256)
);
CREATE INDEX signed_bodies_expires ON signed_bodies (expires_at);
