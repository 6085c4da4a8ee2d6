-- expect: applied
SELECT string_agg(x, ','), group_concat(x), total(x) FROM (SELECT 1 AS x UNION ALL SELECT 2);
