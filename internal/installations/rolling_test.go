package installations_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/installations"
	"github.com/pushd/pushd/internal/storage/storagetest"
)

// TestPlatformWrittenBeforeMigration: during a rolling upgrade a pushd from
// before platforms writes rows that name none; the store reads them as
// their provider's default.
func TestPlatformWrittenBeforeMigration(t *testing.T) {
	db := storagetest.Postgres(t)
	now := db.Time(time.Now())
	const old = "INSERT INTO installations (app_id, installation_id, client_id, provider, token, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
	storagetest.Exec(t, db, old, "default", "old-iphone", "carol", "apns", strings.Repeat("ab", 32), now, now)
	storagetest.Exec(t, db, old, "default", "old-pixel", "carol", "fcm", "fcm-token-1", now, now)
	list, err := installations.NewStore(db).ValidForClients(context.Background(), "default", []string{"carol"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]installations.Platform{}
	for _, in := range list {
		got[in.ID] = in.Platform
	}
	if got["old-iphone"] != installations.PlatformIOS || got["old-pixel"] != installations.PlatformAndroid || len(got) != 2 {
		t.Errorf("platforms %v, want old-iphone ios and old-pixel android", got)
	}
}
