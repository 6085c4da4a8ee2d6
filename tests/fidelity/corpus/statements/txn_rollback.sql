-- expect: transaction
ROLLBACK;
