-- A job split into child jobs reads the record of its own recipients only,
-- not the whole message's: a million-recipient message read whole by each
-- of its thousand chunks would be a billion rows.
CREATE INDEX deliveries_by_client ON deliveries (app_id, message_id, client_id);
