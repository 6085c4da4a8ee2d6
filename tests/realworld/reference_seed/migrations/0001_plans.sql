PRAGMA foreign_keys = ON;

CREATE TABLE plans (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    monthly_cents INTEGER NOT NULL
);

INSERT INTO plans (id, code, monthly_cents) VALUES
    (1, 'free', 0),
    (2, 'team', 1200),
    (3, 'business', 4900);

CREATE TABLE plan_limits (
    plan_id INTEGER NOT NULL REFERENCES plans(id),
    limit_name TEXT NOT NULL,
    limit_value INTEGER NOT NULL,
    PRIMARY KEY (plan_id, limit_name)
);

INSERT INTO plan_limits (plan_id, limit_name, limit_value) VALUES
    (1, 'projects', 3),
    (2, 'projects', 50),
    (3, 'projects', 500);
