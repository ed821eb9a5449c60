
/* tell the launcher, or warn when jobq is not preloaded */
SELECT jobq._on_create();
