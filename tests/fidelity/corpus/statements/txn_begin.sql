-- expect: transaction
BEGIN;
