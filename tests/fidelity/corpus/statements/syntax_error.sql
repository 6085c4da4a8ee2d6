-- expect: syntax
SELEC 1;
