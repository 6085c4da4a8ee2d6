-- d1check: irreversible the codes are not kept anywhere
-- d1check: not-idempotent the column is gone after the first run
ALTER TABLE products DROP COLUMN legacy_code;
