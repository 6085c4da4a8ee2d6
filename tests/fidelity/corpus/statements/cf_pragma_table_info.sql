-- expect: auth
PRAGMA table_info(_cf_KV);
