-- expect: applied
CREATE VIRTUAL TABLE tri USING fts5(body, tokenize = 'trigram');
