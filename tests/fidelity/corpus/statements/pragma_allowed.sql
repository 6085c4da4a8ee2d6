-- expect: applied
PRAGMA table_list;
PRAGMA foreign_key_check;
PRAGMA quick_check;
PRAGMA optimize;
PRAGMA data_version;
PRAGMA foreign_keys;
PRAGMA defer_foreign_keys = ON;
PRAGMA legacy_alter_table = OFF;
PRAGMA recursive_triggers = ON;
PRAGMA case_sensitive_like = OFF;
PRAGMA reverse_unordered_selects = OFF;
PRAGMA page_size;
PRAGMA table_info(sqlite_schema);
