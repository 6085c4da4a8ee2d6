-- expect: auth
SELECT sqlite_source_id();
