UPDATE people SET email = NULL WHERE email = lower(name) || '@example.com';
