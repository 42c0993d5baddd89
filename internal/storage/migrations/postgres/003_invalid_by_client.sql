-- Why a recipient without a valid device has none: its most recently
-- invalidated installation, looked up by client for a whole job at once.
CREATE INDEX installations_invalid_by_client ON installations (app_id, client_id, invalid_at) WHERE valid = FALSE;
