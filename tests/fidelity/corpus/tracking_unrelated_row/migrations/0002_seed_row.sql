INSERT INTO d1_migrations (name) VALUES ('seed');
