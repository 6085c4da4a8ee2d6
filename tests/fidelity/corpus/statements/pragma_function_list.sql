-- expect: auth
PRAGMA function_list;
