-- d1check: irreversible labels are shared with the billing service
CREATE TABLE IF NOT EXISTS labels (id INTEGER PRIMARY KEY, text TEXT NOT NULL);
