package installations

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

// fakePruner records the cut-offs it is asked for and answers n, err.
type fakePruner struct {
	mu    sync.Mutex
	calls []time.Time
	n     int64
	err   error
	seen  chan struct{}
}

func (f *fakePruner) Prune(ctx context.Context, before time.Time) (int64, error) {
	f.mu.Lock()
	f.calls = append(f.calls, before)
	f.mu.Unlock()
	select {
	case f.seen <- struct{}{}:
	default:
	}
	return f.n, f.err
}

func (f *fakePruner) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func TestDeliveryPruner(t *testing.T) {
	now := time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name    string
		n       int64
		err     error
		wantLog string // "" for no line
	}{
		{"pruned some", 42, nil, "level=INFO msg=\"pruned delivery records\" count=42"},
		{"nothing to prune", 0, nil, ""},
		{"database down", 0, errors.New("connection refused"), "level=WARN msg=\"prune delivery records\" err=\"connection refused\""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logs logtest.Buffer
			f := &fakePruner{n: c.n, err: c.err, seen: make(chan struct{}, 1)}
			p := newDeliveryPruner(f, retention, slog.New(slog.NewTextHandler(&logs, nil)), func() time.Time { return now }, 20*time.Millisecond)
			p.Start()
			// Once at start, then every interval.
			for range 3 {
				select {
				case <-f.seen:
				case <-time.After(5 * time.Second):
					t.Fatalf("pruned %d times in 5s, want 3", f.count())
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := p.Stop(ctx); err != nil {
				t.Fatalf("stop: %v", err)
			}
			n := f.count()
			time.Sleep(60 * time.Millisecond)
			if f.count() != n {
				t.Errorf("pruned %d times after stop", f.count()-n)
			}
			f.mu.Lock()
			for _, before := range f.calls {
				if want := now.Add(-7 * 24 * time.Hour); !before.Equal(want) {
					t.Errorf("cut-off %v, want %v", before, want)
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
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "count=1") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
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
