-- expect: auth
ATTACH DATABASE 'other.db' AS other;
