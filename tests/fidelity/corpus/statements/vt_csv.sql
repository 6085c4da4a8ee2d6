-- expect: auth
CREATE VIRTUAL TABLE c USING csv(filename='x.csv');
