-- The platform an installation runs on, which decides the shape of its FCM
-- message: FCM reaches iOS apps and web browsers as well as Android.
-- Installations registered before now are taken to be what their provider
-- implies: APNs reaches only iOS, and FCM was used from Android apps.
--
-- The default is FCM's, the only provider with a choice; an APNs row that
-- names no platform fails the check rather than being stored as android.
ALTER TABLE installations
    ADD COLUMN platform text NOT NULL DEFAULT 'android' CHECK (platform IN ('ios', 'android', 'web'));

UPDATE installations SET platform = 'ios' WHERE provider = 'apns';

ALTER TABLE installations
    ADD CONSTRAINT installations_apns_platform CHECK (provider = 'fcm' OR platform = 'ios');
