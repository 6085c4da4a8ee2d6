-- expect: auth
DETACH DATABASE other;
