-- The team row was created by hand in production, never by a migration.
INSERT INTO projects (id, team_id, title)
VALUES ('00000000-0000-4000-8000-0000000000aa', '00000000-0000-4000-8000-000000000001', 'Inbox');
