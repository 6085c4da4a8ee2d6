-- expect: transaction
SAVEPOINT s1;
