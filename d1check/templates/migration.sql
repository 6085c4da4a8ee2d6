-- Migration: $name
-- $title
-- Created $date; applied once, in order, by `wrangler d1 migrations apply` or `d1check apply`.
-- d1check checks it against the whole history: it applies, keeps existing rows, rolls back
-- ($rollback_path), and runs on D1.

