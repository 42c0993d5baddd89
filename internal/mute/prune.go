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
type Pruner struct{ *periodic.Pruner }

// prunable is what a Pruner prunes: *Store, or a fake in tests.
type prunable interface {
	Prune(ctx context.Context, now time.Time) (int64, error)
}

// NewPruner returns a pruner of s's expired mutes, not yet started.
func NewPruner(s *Store, log *slog.Logger) *Pruner {
	return newPruner(s, log, time.Now, pruneInterval)
}

func newPruner(s prunable, log *slog.Logger, now func() time.Time, interval time.Duration) *Pruner {
	return &Pruner{periodic.NewPruner("expired mutes", interval, log, func(ctx context.Context) (int64, error) {
		return s.Prune(ctx, now())
	})}
}
