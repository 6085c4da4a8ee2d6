-- expect: applied
SELECT iif(1, 'a', 'b'), unixepoch('2024-01-01'), timediff('2024-01-02', '2024-01-01'),
       octet_length('abc'), concat('a', 1), concat_ws('-', 'a', 'b'), random(), hex(randomblob(4));
