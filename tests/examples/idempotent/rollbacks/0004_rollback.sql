DELETE FROM sizes WHERE name = 'large';
