-- Rollback for $name
-- Undo exactly what $migration_path does; d1check checks that the schema and the rows
-- of the previous version come back.

