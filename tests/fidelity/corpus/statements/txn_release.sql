-- expect: transaction
RELEASE s1;
