-- expect: no_such_function
SELECT percentile(1, 50);
