-- expect: auth
SELECT json_error_position('{');
