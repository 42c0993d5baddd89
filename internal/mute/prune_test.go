package mute

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/logtest"
	"github.com/pushd/pushd/internal/storage/storagetest"
)

// fakeStore records the times it is asked to prune at and answers n, err.
type fakeStore struct {
	mu    sync.Mutex
	calls []time.Time
	n     int64
	err   error
	seen  chan struct{}
}

func (f *fakeStore) Prune(ctx context.Context, now time.Time) (int64, error) {
	f.mu.Lock()
	f.calls = append(f.calls, now)
	f.mu.Unlock()
	select {
	case f.seen <- struct{}{}:
	default:
	}
	return f.n, f.err
}

func TestPruner(t *testing.T) {
	now := time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name    string
		n       int64
		err     error
		wantLog string // "" for no line
	}{
		{"pruned some", 42, nil, `level=INFO msg="pruned expired mutes" count=42`},
		{"nothing to prune", 0, nil, ""},
		{"database down", 0, errors.New("connection refused"), `level=WARN msg="prune expired mutes" err="connection refused"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logs logtest.Buffer
			f := &fakeStore{n: c.n, err: c.err, seen: make(chan struct{}, 1)}
			p := newPruner(f, slog.New(slog.NewTextHandler(&logs, nil)), func() time.Time { return now }, 20*time.Millisecond)
			p.Start()
			// Once at start, then every interval.
			for range 2 {
				select {
				case <-f.seen:
				case <-time.After(5 * time.Second):
					t.Fatal("no prune in 5s")
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := p.Stop(ctx); err != nil {
				t.Fatalf("stop: %v", err)
			}
			f.mu.Lock()
			for _, at := range f.calls {
				if !at.Equal(now) {
					t.Errorf("pruned at %v, want now (%v): a mute ends at its until", at, now)
				}
			}
			f.mu.Unlock()
			l := logs.String()
			if c.wantLog == "" && l != "" {
				t.Errorf("logged %q, want nothing", l)
			}
			if c.wantLog != "" && !strings.Contains(l, c.wantLog) {
				t.Errorf("log %q, want %q", l, c.wantLog)
			}
		})
	}
}

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
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "count=1") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
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
