DELETE FROM labels WHERE name IN ('sale', 'new', 'clearance');
