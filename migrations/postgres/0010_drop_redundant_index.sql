-- `certificates_created (created_at)` is the prefix of `certificates_created_serial (created_at,
-- serial)`: the second serves every query the first did. One index fewer to update per issued
-- certificate (each commit wrote its pages too).
DROP INDEX IF EXISTS certificates_created;
