-- expect: auth
PRAGMA user_version;
