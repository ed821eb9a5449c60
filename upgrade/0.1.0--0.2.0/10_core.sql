
/*
 * Channel names are checked as queue and kind names are (api.c): not
 * empty, at most 63 bytes, no control characters; the table's constraint
 * says the same for rows written by hand.
 */
ALTER TABLE jobq._channels
	ADD CONSTRAINT _channels_name_chars CHECK (name !~ '[\x01-\x1f\x7f]');

CREATE OR REPLACE FUNCTION jobq.create_channel(name text, type text, config jsonb DEFAULT '{}', secrets jsonb DEFAULT '{}')
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	IF name IS NULL THEN
		RAISE EXCEPTION 'channel name must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF name = '' OR octet_length(name) > 63 THEN
		RAISE EXCEPTION 'channel name must be 1 to 63 bytes long'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF name ~ '[\x01-\x1f\x7f]' THEN
		RAISE EXCEPTION 'channel name must not contain control characters'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	PERFORM jobq._check_channel(type, config, secrets);
	INSERT INTO jobq._channels (name, type, config, secrets) VALUES (name, type, config, secrets);
EXCEPTION WHEN unique_violation THEN
	RAISE EXCEPTION 'channel "%" already exists', name USING ERRCODE = 'duplicate_object',
		HINT = 'jobq.alter_channel() changes it.';
END $$;
