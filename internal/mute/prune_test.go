package mute

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/logtest"
	"github.com/pushd/pushd/internal/storage/storagetest"
)

// The first prune, at start, deletes the mutes that ended from a real
// store and keeps the rest.
func TestPrunerDeletesExpiredMutes(t *testing.T) {
	s := NewStore(storagetest.SQLite(t))
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	until := now.Add(time.Minute)
	for _, m := range []Mute{
		{AppID: "default", ClientID: "alice", ConversationID: "ended", Until: &until},
		{AppID: "default", ClientID: "alice", ConversationID: "forever"},
	} {
		if err := s.Set(ctx, m, now); err != nil {
			t.Fatal(err)
		}
	}
	var logs logtest.Buffer
	later := now.Add(time.Hour)
	p := newPruner(s, slog.New(slog.NewTextHandler(&logs, nil)), func() time.Time { return later }, time.Hour)
	p.Start()
	logs.WaitFor("count=1", 5*time.Second)
	stopCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := p.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "count=1") {
		t.Errorf("log %q, want one mute pruned", logs.String())
	}
	if err := s.Delete(ctx, "default", "alice", "ended"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the ended mute is still stored: Delete = %v", err)
	}
	if list, err := s.List(ctx, "default", "alice", later); err != nil || len(list) != 1 || list[0].ConversationID != "forever" {
		t.Errorf("List = %+v, %v; want the mute without end", list, err)
	}
}
