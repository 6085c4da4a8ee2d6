INSERT INTO posts (id, user_id, title) VALUES (3, 99, 'orphan');
