-- Give the (single) account its default key; the account was created by the signup flow.
INSERT INTO api_keys (account_id, label)
VALUES ((SELECT id FROM accounts ORDER BY rowid LIMIT 1), 'default');
