-- expect: auth
SELECT load_extension('x');
