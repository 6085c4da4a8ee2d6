-- expect: no_such_function
SELECT soundex('x');
