-- expect: transaction
END;
