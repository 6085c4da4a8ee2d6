-- expect: applied
SELECT json(jsonb('{"a":1}')), '{"a":1}' -> '$.a', '{"a":1}' ->> '$.a', json_extract('[1,2]', '$[1]');
