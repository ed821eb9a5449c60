
/*
 * Channel names are checked as queue and kind names are (api.c): not
 * empty, at most 63 bytes, no control characters; the table's constraint
 * says the same for rows written by hand.
 */
ALTER TABLE jobq._channels
	ADD CONSTRAINT _channels_name_chars CHECK (name !~ '[\x01-\x1f\x7f]');
