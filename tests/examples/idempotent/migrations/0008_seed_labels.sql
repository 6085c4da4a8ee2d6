INSERT OR IGNORE INTO labels (id, name) VALUES (1, 'sale'), (2, 'new');
INSERT INTO labels (name) VALUES ('clearance') ON CONFLICT DO NOTHING;
