CREATE TABLE subscriptions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_ref TEXT NOT NULL,
    plan_id INTEGER NOT NULL DEFAULT 1 REFERENCES plans(id),
    started_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);

INSERT INTO plans (id, code, monthly_cents) VALUES (4, 'enterprise', 19900);
