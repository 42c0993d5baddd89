-- The platform an installation runs on, which decides the shape of its FCM
-- message: FCM reaches iOS apps and web browsers as well as Android.
-- Installations registered before now are taken to be what their provider
-- implies: APNs reaches only iOS, and FCM was used from Android apps.
--
-- The default is FCM's, the only provider with a choice; an APNs row that
-- names no platform fails the check rather than being stored as android.
--
-- SQLite cannot add a table constraint to an existing table, and checks a
-- new column's constraints against every existing row before it can be
-- filled in, so the table is rebuilt as in
-- https://www.sqlite.org/lang_altertable.html#otheralter. No other table
-- refers to it.
CREATE TABLE installations_002 (
    app_id          TEXT    NOT NULL,
    installation_id TEXT    NOT NULL,
    client_id       TEXT    NOT NULL,
    provider        TEXT    NOT NULL CHECK (provider IN ('apns', 'fcm')),
    platform        TEXT    NOT NULL DEFAULT 'android' CHECK (platform IN ('ios', 'android', 'web')),
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
    CHECK (apns_env = '' OR provider = 'apns'),
    CHECK (provider = 'fcm' OR platform = 'ios')
) STRICT;

INSERT INTO installations_002 (app_id, installation_id, client_id, provider, platform, token, apns_env, apns_topic,
        locale, timezone, badge, valid, invalid_reason, invalid_at, created_at, updated_at)
    SELECT app_id, installation_id, client_id, provider, CASE provider WHEN 'apns' THEN 'ios' ELSE 'android' END, token,
        apns_env, apns_topic, locale, timezone, badge, valid, invalid_reason, invalid_at, created_at, updated_at
    FROM installations;

DROP TABLE installations;
ALTER TABLE installations_002 RENAME TO installations;

-- Dropped with the old table. Queries must spell the predicate exactly
-- "valid = TRUE" for SQLite to use it.
CREATE INDEX installations_valid_by_client ON installations (app_id, client_id) WHERE valid = TRUE;
