-- expect: auth
SELECT json_pretty('{"a":1}');
