package periodic

import (
	"context"
	"log/slog"
	"time"
)

// Pruner deletes rows that have outlived their use, at Start and then
// every interval until Stop, and logs what it did: a line when rows went,
// a warning when the delete failed, nothing otherwise.
type Pruner struct {
	loop *Loop
}

// NewPruner returns a pruner, not yet started, that calls prune, which
// deletes and reports how many rows went; what names them in the log
// ("delivery records").
func NewPruner(what string, interval time.Duration, log *slog.Logger, prune func(ctx context.Context) (int64, error)) *Pruner {
	return &Pruner{loop: New(interval, func(ctx context.Context) {
		n, err := prune(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			// Stopping: the next start prunes.
		case err != nil:
			log.Warn("prune "+what, "err", err)
		case n > 0:
			log.Info("pruned "+what, "count", n)
		}
	})}
}

// Start prunes at once, in the background, and then every interval.
func (p *Pruner) Start() { p.loop.Start() }

// Stop ends the pruning, cancelling a prune in progress, and waits for it
// until ctx ends.
func (p *Pruner) Stop(ctx context.Context) error { return p.loop.Stop(ctx) }
