INSERT INTO docs (title, body) VALUES ('Hello', 'hello world'), ('Other', 'something else');
CREATE TABLE hits AS SELECT highlight(docs_fts, 1, '[', ']') AS h, snippet(docs_fts, 1, '[', ']', '…', 4) AS s, bm25(docs_fts) < 0 AS ranked FROM docs_fts WHERE docs_fts MATCH 'hello';
CREATE VIRTUAL TABLE tri USING fts5(body, tokenize = 'trigram');
INSERT INTO tri (body) VALUES ('abcdef');
CREATE VIRTUAL TABLE docs_vocab USING fts5vocab(docs_fts, 'row');
CREATE TABLE terms AS SELECT term, doc FROM docs_vocab;
CREATE VIRTUAL TABLE scratch USING fts5(x);
DROP TABLE scratch;
