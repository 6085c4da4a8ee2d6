-- expect: auth
PRAGMA database_list;
