package installations

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/logtest"
	"github.com/pushd/pushd/internal/storage/storagetest"
)

// The first run of the loop, at start, deletes records past the
// retention from a real store and keeps the rest.
func TestDeliveryPrunerDeletesOldRecords(t *testing.T) {
	db := storagetest.SQLite(t)
	del := NewDeliveries(db)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	if err := del.Record(ctx, "default", "old", []Delivery{{ClientID: "alice", Outcome: "muted", At: now.Add(-retention - time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	if err := del.Record(ctx, "default", "new", []Delivery{{ClientID: "alice", Outcome: "muted", At: now.Add(-retention + time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	var logs logtest.Buffer
	p := newDeliveryPruner(del, retention, slog.New(slog.NewTextHandler(&logs, nil)), func() time.Time { return now }, time.Hour)
	p.Start()
	logs.WaitFor("count=1", 5*time.Second)
	ctx2, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := p.Stop(ctx2); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "count=1") {
		t.Errorf("log %q, want one record pruned", logs.String())
	}
	for msg, want := range map[string]int{"old": 0, "new": 1} {
		rows, err := del.Trace(ctx, "default", msg)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != want {
			t.Errorf("%s: %d records left, want %d", msg, len(rows), want)
		}
	}
}

// retention is the pruners' retention in these tests.
const retention = 7 * 24 * time.Hour
