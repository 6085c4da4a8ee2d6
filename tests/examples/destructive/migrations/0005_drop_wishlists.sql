-- d1check: allow-destructive wishlists were never used, the table is empty in production
-- d1check: irreversible nothing to restore
DROP TABLE IF EXISTS wishlists;
