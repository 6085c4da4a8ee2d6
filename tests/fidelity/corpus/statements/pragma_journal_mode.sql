-- expect: auth
PRAGMA journal_mode;
