-- expect: applied
SELECT sqrt(4), pi(), ln(2), pow(2, 10), floor(1.5), ceil(1.5);
