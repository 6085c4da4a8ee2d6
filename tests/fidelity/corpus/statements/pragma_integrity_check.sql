-- expect: auth
PRAGMA integrity_check;
