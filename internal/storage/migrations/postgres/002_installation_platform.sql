-- The platform an installation runs on, which decides the shape of its FCM
-- message: FCM reaches iOS apps and web browsers as well as Android.
-- Installations registered before now are taken to be what their provider
-- implies: APNs reaches only iOS, and FCM was used from Android apps.
--
-- '' is what a pushd from before this migration writes while a rolling
-- upgrade has both running: the store reads it as the provider's default,
-- and the checks let it through rather than fail that pushd's
-- registrations.
ALTER TABLE installations
    ADD COLUMN platform text NOT NULL DEFAULT '' CHECK (platform IN ('', 'ios', 'android', 'web'));

UPDATE installations SET platform = CASE provider WHEN 'apns' THEN 'ios' ELSE 'android' END;

ALTER TABLE installations
    ADD CONSTRAINT installations_apns_platform CHECK (provider = 'fcm' OR platform IN ('', 'ios'));
