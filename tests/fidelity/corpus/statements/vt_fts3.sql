-- expect: auth
CREATE VIRTUAL TABLE f3 USING fts3(body);
