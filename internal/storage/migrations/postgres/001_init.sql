-- The same schema as sqlite/001_init.sql, in PostgreSQL's types.
-- Absent text is '' rather than NULL; only "no time" is NULL.

-- One device of one client.
CREATE TABLE installations (
    app_id          text        NOT NULL,
    installation_id text        NOT NULL,
    client_id       text        NOT NULL,
    provider        text        NOT NULL CHECK (provider IN ('apns', 'fcm')),
    token           text        NOT NULL,
    -- '' for FCM; for APNs '' means production until a push says otherwise.
    apns_env        text        NOT NULL DEFAULT '' CHECK (apns_env IN ('', 'production', 'development')),
    apns_topic      text        NOT NULL DEFAULT '',
    locale          text        NOT NULL DEFAULT '',
    timezone        text        NOT NULL DEFAULT '',
    badge           integer     NOT NULL DEFAULT 0,
    valid           boolean     NOT NULL DEFAULT TRUE,
    invalid_reason  text        NOT NULL DEFAULT '',
    invalid_at      timestamptz,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (app_id, installation_id),
    -- A token belongs to one installation, hence to one client.
    UNIQUE (app_id, provider, token),
    CHECK (apns_env = '' OR provider = 'apns')
);

-- The dispatcher's lookup: valid devices of a job's recipients.
CREATE INDEX installations_valid_by_client ON installations (app_id, client_id) WHERE valid = TRUE;

-- A client's mute of one conversation.
CREATE TABLE mutes (
    app_id          text        NOT NULL,
    client_id       text        NOT NULL,
    conversation_id text        NOT NULL,
    -- NULL: muted until unmuted.
    until           timestamptz,
    allow_mentions  boolean     NOT NULL DEFAULT FALSE,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (app_id, client_id, conversation_id)
);

-- What became of one message for one device (installation_id <> '') or for
-- a recipient as a whole (installation_id = '': muted, no_device). A device
-- that accepted the message is never pushed it again.
CREATE TABLE deliveries (
    app_id          text        NOT NULL,
    message_id      text        NOT NULL,
    installation_id text        NOT NULL,
    client_id       text        NOT NULL DEFAULT '',
    outcome         text        NOT NULL,
    reason          text        NOT NULL DEFAULT '',
    provider_id     text        NOT NULL DEFAULT '',
    at              timestamptz NOT NULL,
    PRIMARY KEY (app_id, message_id, installation_id, client_id)
);

-- Pruning old traces.
CREATE INDEX deliveries_at ON deliveries (at);
