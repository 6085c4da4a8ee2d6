-- d1check: irreversible the deleted tasks are archived elsewhere first
DELETE FROM tasks;
