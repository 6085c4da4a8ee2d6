-- expect: auth
PRAGMA user_version = 3;
