INSERT INTO sizes (name) SELECT 'large' WHERE NOT EXISTS (SELECT 1 FROM sizes WHERE name = 'large');
