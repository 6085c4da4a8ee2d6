DELETE FROM colours WHERE name IN ('red', 'green');
