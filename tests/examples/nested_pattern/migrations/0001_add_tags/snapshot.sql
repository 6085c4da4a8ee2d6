-- a snapshot the ORM keeps beside the migration; wrangler does not apply it
DROP TABLE posts;
