-- d1check: irreversible coupon data is gone once dropped
DROP TABLE IF EXISTS coupons;
