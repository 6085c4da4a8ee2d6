-- expect: auth
SELECT unistr('\u0041');
