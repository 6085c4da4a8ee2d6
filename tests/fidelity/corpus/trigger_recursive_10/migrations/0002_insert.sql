PRAGMA recursive_triggers = ON;
INSERT INTO r VALUES (0);
