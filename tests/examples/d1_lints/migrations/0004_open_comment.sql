CREATE TABLE IF NOT EXISTS desks (id INTEGER PRIMARY KEY, name TEXT);
/* desks are numbered per room
