// Package periodic runs housekeeping, such as deleting rows that have
// outlived their use, in a goroutine of its own: once at start, then at a
// fixed interval, until stopped.
package periodic

import (
	"context"
	"time"
)

// Loop calls a function at Start and then every interval until Stop. A
// call that outlasts the interval delays the next one rather than
// overlapping it.
type Loop struct {
	interval time.Duration
	run      func(ctx context.Context)
	cancel   context.CancelFunc
	done     chan struct{}
}

// New returns a loop that will call run every interval once started. run
// must return soon after its context is cancelled.
func New(interval time.Duration, run func(ctx context.Context)) *Loop {
	return &Loop{interval: interval, run: run}
}

// Start calls run at once in a new goroutine, and then every interval.
// A loop starts once.
func (l *Loop) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel, l.done = cancel, make(chan struct{})
	go func() {
		defer close(l.done)
		t := time.NewTicker(l.interval)
		defer t.Stop()
		for {
			l.run(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// Stop ends the loop, cancelling the context of a call in progress, and
// waits for the call to return until ctx ends. Stopping a loop that never
// started does nothing.
func (l *Loop) Stop(ctx context.Context) error {
	if l.cancel == nil {
		return nil
	}
	l.cancel()
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
