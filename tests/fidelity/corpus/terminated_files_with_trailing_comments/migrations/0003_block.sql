CREATE TABLE c (x);
/* the end */