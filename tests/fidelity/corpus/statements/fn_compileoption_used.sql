-- expect: auth
SELECT sqlite_compileoption_used('THREADSAFE');
