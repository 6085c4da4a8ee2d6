-- expect: transaction
BEGIN IMMEDIATE;
