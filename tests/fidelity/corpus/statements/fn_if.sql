-- expect: auth
SELECT if(1, 'a', 'b');
