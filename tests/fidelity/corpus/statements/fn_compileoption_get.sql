-- expect: auth
SELECT sqlite_compileoption_get(0);
