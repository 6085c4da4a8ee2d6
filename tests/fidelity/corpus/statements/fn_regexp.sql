-- expect: no_such_function
SELECT 'a' REGEXP 'a';
