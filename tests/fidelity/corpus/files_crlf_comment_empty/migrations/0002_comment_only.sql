-- nothing to do here
/* still nothing */
