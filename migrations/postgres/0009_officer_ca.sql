-- The officers CA is a role of a `[[ca]]` entry (`role = "officers"`), not a fixed name, so it
-- can be replaced like any CA while the one it replaced keeps revoking the officers it issued.
-- `ca` names the configured CA that issued each officer certificate; every row registered
-- before this migration came from the CA named `officers`, the only one that could issue them.
-- `not_after` (Unix seconds) tells how long that CA must keep a CRL for them; older rows get
-- their registration time plus the two years an officer certificate lasts (an upper bound:
-- a certificate ends no later than its CA).
ALTER TABLE officers ADD COLUMN ca TEXT NOT NULL DEFAULT 'officers';
ALTER TABLE officers ADD COLUMN not_after BIGINT NOT NULL DEFAULT 0;
UPDATE officers SET not_after = created + 63072000;
CREATE INDEX officers_ca ON officers (ca, status);
