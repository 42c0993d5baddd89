-- Timestamps are INTEGER Unix milliseconds, UTC. Booleans are 0/1.
-- Absent text is '' rather than NULL; only "no time" is NULL.

-- One device of one client.
CREATE TABLE installations (
    app_id          TEXT    NOT NULL,
    installation_id TEXT    NOT NULL,
    client_id       TEXT    NOT NULL,
    provider        TEXT    NOT NULL CHECK (provider IN ('apns', 'fcm')),
    token           TEXT    NOT NULL,
    -- '' for FCM; for APNs '' means production until a push says otherwise.
    apns_env        TEXT    NOT NULL DEFAULT '' CHECK (apns_env IN ('', 'production', 'development')),
    apns_topic      TEXT    NOT NULL DEFAULT '',
    locale          TEXT    NOT NULL DEFAULT '',
    timezone        TEXT    NOT NULL DEFAULT '',
    badge           INTEGER NOT NULL DEFAULT 0,
    valid           INTEGER NOT NULL DEFAULT 1 CHECK (valid IN (0, 1)),
    invalid_reason  TEXT    NOT NULL DEFAULT '',
    invalid_at      INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (app_id, installation_id),
    -- A token belongs to one installation, hence to one client.
    UNIQUE (app_id, provider, token),
    CHECK (apns_env = '' OR provider = 'apns')
) STRICT;

-- The dispatcher's lookup: valid devices of a job's recipients. Queries must
-- spell the predicate exactly "valid = TRUE" for SQLite to use it.
CREATE INDEX installations_valid_by_client ON installations (app_id, client_id) WHERE valid = TRUE;

-- A client's mute of one conversation.
CREATE TABLE mutes (
    app_id          TEXT    NOT NULL,
    client_id       TEXT    NOT NULL,
    conversation_id TEXT    NOT NULL,
    -- NULL: muted until unmuted.
    until           INTEGER,
    allow_mentions  INTEGER NOT NULL DEFAULT 0 CHECK (allow_mentions IN (0, 1)),
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (app_id, client_id, conversation_id)
) STRICT;

-- What became of one message for one device (installation_id <> '') or for
-- a recipient as a whole (installation_id = '': muted, no_device). A device
-- that accepted the message is never pushed it again.
CREATE TABLE deliveries (
    app_id          TEXT    NOT NULL,
    message_id      TEXT    NOT NULL,
    installation_id TEXT    NOT NULL,
    client_id       TEXT    NOT NULL DEFAULT '',
    outcome         TEXT    NOT NULL,
    reason          TEXT    NOT NULL DEFAULT '',
    provider_id     TEXT    NOT NULL DEFAULT '',
    at              INTEGER NOT NULL,
    PRIMARY KEY (app_id, message_id, installation_id, client_id)
) STRICT;

-- Pruning old traces.
CREATE INDEX deliveries_at ON deliveries (at);
