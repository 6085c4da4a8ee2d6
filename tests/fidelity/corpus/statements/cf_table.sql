-- expect: auth
CREATE TABLE _cf_x (a);
