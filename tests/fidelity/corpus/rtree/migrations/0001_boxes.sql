CREATE VIRTUAL TABLE boxes USING rtree(id, min_x, max_x, min_y, max_y);
INSERT INTO boxes VALUES (1, 0, 10, 0, 10), (2, 5, 15, 5, 15);
CREATE TABLE overlap AS SELECT id FROM boxes WHERE max_x >= 7 AND min_x <= 7;
