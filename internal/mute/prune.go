package mute

import (
	"context"
	"log/slog"
	"time"

	"github.com/pushd/pushd/internal/periodic"
)

// pruneInterval is how often expired mutes are deleted. An expired mute is
// ignored whether or not it is still stored, so this bounds only how long
// it takes room.
const pruneInterval = time.Hour

// Pruner deletes expired mutes (Store.Prune) at start and then every hour,
// until stopped, and logs how many went.
type Pruner struct {
	loop  *periodic.Loop
	mutes prunable
	log   *slog.Logger
	now   func() time.Time
}

// prunable is what a Pruner prunes: *Store, or a fake that fails on demand
// in tests.
type prunable interface {
	Prune(ctx context.Context, now time.Time) (int64, error)
}

// NewPruner returns a pruner of s's expired mutes, not yet started.
func NewPruner(s *Store, log *slog.Logger) *Pruner {
	return newPruner(s, log, time.Now, pruneInterval)
}

func newPruner(s prunable, log *slog.Logger, now func() time.Time, interval time.Duration) *Pruner {
	p := &Pruner{mutes: s, log: log, now: now}
	p.loop = periodic.New(interval, p.prune)
	return p
}

// Start prunes at once, in the background, and then every hour.
func (p *Pruner) Start() { p.loop.Start() }

// Stop ends the pruning, cancelling a prune in progress, and waits for it
// until ctx ends.
func (p *Pruner) Stop(ctx context.Context) error { return p.loop.Stop(ctx) }

func (p *Pruner) prune(ctx context.Context) {
	n, err := p.mutes.Prune(ctx, p.now())
	switch {
	case err != nil && ctx.Err() != nil:
		// Stopping: the next start prunes.
	case err != nil:
		p.log.Warn("prune expired mutes", "err", err)
	case n > 0:
		p.log.Info("pruned expired mutes", "count", n)
	}
}
