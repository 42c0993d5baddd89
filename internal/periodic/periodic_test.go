package periodic_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/logtest"
	"github.com/pushd/pushd/internal/periodic"
)

// The loop runs at start, then every interval, and not after Stop.
func TestLoop(t *testing.T) {
	var calls atomic.Int64
	seen := make(chan struct{}, 1)
	l := periodic.New(20*time.Millisecond, func(context.Context) {
		calls.Add(1)
		select {
		case seen <- struct{}{}:
		default:
		}
	})
	start := time.Now()
	l.Start()
	for i := range 3 {
		select {
		case <-seen:
		case <-time.After(5 * time.Second):
			t.Fatalf("ran %d times in 5s, want 3", calls.Load())
		}
		if i == 0 && time.Since(start) > time.Second {
			t.Errorf("first run after %v, want at once", time.Since(start))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	n := calls.Load()
	time.Sleep(60 * time.Millisecond)
	if got := calls.Load(); got != n {
		t.Errorf("ran %d times after Stop", got-n)
	}
}

// Stop cancels a run in progress and waits for it to return; a run that
// ignores its context holds Stop only until Stop's own context ends.
func TestStopCancelsRun(t *testing.T) {
	running := make(chan struct{})
	returned := make(chan struct{})
	l := periodic.New(time.Hour, func(ctx context.Context) {
		close(running)
		<-ctx.Done()
		close(returned)
	})
	l.Start()
	<-running
	if err := l.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	select {
	case <-returned:
	default:
		t.Error("Stop returned before the run did")
	}

	release := make(chan struct{})
	defer close(release)
	stuck := periodic.New(time.Hour, func(context.Context) { <-release })
	stuck.Start()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := stuck.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Stop of a stuck run = %v, want the deadline", err)
	}
}

func TestStopUnstarted(t *testing.T) {
	if err := periodic.New(time.Hour, func(context.Context) {}).Stop(context.Background()); err != nil {
		t.Errorf("Stop before Start = %v", err)
	}
}

// A pruner logs a line when rows went, a warning when the delete failed,
// and nothing when there was nothing to delete or it was stopped.
func TestPrunerLogs(t *testing.T) {
	for _, c := range []struct {
		name    string
		n       int64
		err     error
		wantLog string // "" for no line
	}{
		{"pruned some", 42, nil, `level=INFO msg="pruned old rows" count=42`},
		{"nothing to prune", 0, nil, ""},
		{"database down", 0, errors.New("connection refused"), `level=WARN msg="prune old rows" err="connection refused"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logs logtest.Buffer
			ran := make(chan struct{}, 1)
			p := periodic.NewPruner("old rows", time.Hour, slog.New(slog.NewTextHandler(&logs, nil)), func(context.Context) (int64, error) {
				defer func() { ran <- struct{}{} }()
				return c.n, c.err
			})
			p.Start()
			select {
			case <-ran:
			case <-time.After(5 * time.Second):
				t.Fatal("no prune at start")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := p.Stop(ctx); err != nil {
				t.Fatalf("stop: %v", err)
			}
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
