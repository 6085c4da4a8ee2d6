ALTER TABLE baskets RENAME TO carts;
