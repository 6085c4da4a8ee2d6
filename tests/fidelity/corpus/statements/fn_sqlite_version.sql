-- expect: auth
SELECT sqlite_version();
