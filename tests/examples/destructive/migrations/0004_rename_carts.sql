-- d1check: not-idempotent a rename runs once
ALTER TABLE carts RENAME TO baskets;
