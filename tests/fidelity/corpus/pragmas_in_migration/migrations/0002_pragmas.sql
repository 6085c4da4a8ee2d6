PRAGMA ignore_check_constraints = ON;
INSERT INTO t VALUES (-1);
PRAGMA ignore_check_constraints = OFF;
PRAGMA recursive_triggers = ON;
PRAGMA optimize;
