-- expect: auth
CREATE TABLE "_CF_Y" (a);
