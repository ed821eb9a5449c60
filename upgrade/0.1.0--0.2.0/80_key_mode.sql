
/* ---------------------------------------------------------------------
 * jobq.enqueue takes key_mode (keep, debounce, throttle): a new argument,
 * so the function of 0.1.0 is dropped here and created by
 * src/sql/20_api.sql.  Calls that do not name key_mode do as before.
 * ------------------------------------------------------------------- */

DROP FUNCTION jobq.enqueue(text, jsonb, text, integer, timestamptz, integer, text, interval);
