CREATE INDEX IF NOT EXISTS orders_shop_status ON orders (shop_id, status);
