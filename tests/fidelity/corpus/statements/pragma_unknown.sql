-- expect: auth
PRAGMA no_such_pragma;
