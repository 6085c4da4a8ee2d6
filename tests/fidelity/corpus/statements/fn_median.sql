-- expect: no_such_function
SELECT median(1);
