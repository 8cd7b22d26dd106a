-- The keyed audit chain and its anchors.
-- audit.mac: HMAC-SHA256 of the row's hash under a key derived from data/secret.key. NULL for
--   rows written before this migration (the legacy SHA-256 chain; the first keyed row vouches
--   for them) and by stores opened without the key.
-- audit_anchor: heads of the chain recorded after each CRL and by a periodic checkpoint, each
--   with a MAC over (at, seq, hash, mac, reason). Also written to data/audit-anchors.log.
ALTER TABLE audit ADD COLUMN mac TEXT;

CREATE TABLE audit_anchor (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         BIGINT NOT NULL,
    seq        BIGINT NOT NULL,
    hash       TEXT NOT NULL,
    mac        TEXT,
    reason     TEXT NOT NULL,
    anchor_mac TEXT NOT NULL
);
CREATE INDEX audit_anchor_seq ON audit_anchor(seq);
