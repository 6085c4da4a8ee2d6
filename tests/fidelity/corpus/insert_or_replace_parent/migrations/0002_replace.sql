INSERT OR REPLACE INTO users (id, email) VALUES (1, 'a2@example.com');
