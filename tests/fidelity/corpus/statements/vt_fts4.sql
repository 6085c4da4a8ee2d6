-- expect: auth
CREATE VIRTUAL TABLE f4 USING fts4(body);
