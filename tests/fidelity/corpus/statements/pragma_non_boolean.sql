-- expect: auth
PRAGMA recursive_triggers = banana;
