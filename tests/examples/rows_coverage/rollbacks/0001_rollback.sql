DROP TABLE quotas;
DROP TABLE posts;
DROP TABLE users;
