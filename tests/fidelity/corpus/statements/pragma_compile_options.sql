-- expect: auth
PRAGMA compile_options;
