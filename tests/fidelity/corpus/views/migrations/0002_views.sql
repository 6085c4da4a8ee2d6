CREATE VIEW user_posts AS
  SELECT u.email, p.title FROM users u JOIN posts p ON p.user_id = u.id;
CREATE VIEW counts (email, n) AS SELECT email, (SELECT count(*) FROM posts WHERE user_id = users.id) FROM users;
CREATE VIEW gone AS SELECT 1 AS one;
DROP VIEW gone;
