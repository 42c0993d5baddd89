package installations

import (
	"context"
	"log/slog"
	"time"

	"github.com/pushd/pushd/internal/periodic"
)

// pruneInterval is how often delivery records past their retention are
// deleted.
const pruneInterval = time.Hour

// DeliveryPruner deletes delivery records older than their retention, at
// start and then every hour, until stopped, and logs how many went. The
// records are the trace an operator reads (GET /v1/messages/{id}) and what
// keeps a retried job from pushing a device twice, so the retention must
// outlive the longest life of a job: config checks it at start
// (database.delivery_retention).
type DeliveryPruner struct {
	loop      *periodic.Loop
	del       deliveryPrunable
	retention time.Duration
	log       *slog.Logger
	now       func() time.Time
}

// deliveryPrunable is what a DeliveryPruner prunes: *Deliveries, or a fake
// that fails on demand in tests.
type deliveryPrunable interface {
	Prune(ctx context.Context, before time.Time) (int64, error)
}

// NewDeliveryPruner returns a pruner of d's records older than retention,
// not yet started.
func NewDeliveryPruner(d *Deliveries, retention time.Duration, log *slog.Logger) *DeliveryPruner {
	return newDeliveryPruner(d, retention, log, time.Now, pruneInterval)
}

func newDeliveryPruner(d deliveryPrunable, retention time.Duration, log *slog.Logger, now func() time.Time, interval time.Duration) *DeliveryPruner {
	p := &DeliveryPruner{del: d, retention: retention, log: log, now: now}
	p.loop = periodic.New(interval, p.prune)
	return p
}

// Start prunes at once, in the background, and then every hour.
func (p *DeliveryPruner) Start() { p.loop.Start() }

// Stop ends the pruning, cancelling a prune in progress, and waits for it
// until ctx ends.
func (p *DeliveryPruner) Stop(ctx context.Context) error { return p.loop.Stop(ctx) }

func (p *DeliveryPruner) prune(ctx context.Context) {
	n, err := p.del.Prune(ctx, p.now().Add(-p.retention))
	switch {
	case err != nil && ctx.Err() != nil:
		// Stopping: the next start prunes.
	case err != nil:
		p.log.Warn("prune delivery records", "err", err)
	case n > 0:
		p.log.Info("pruned delivery records", "count", n, "older_than", p.retention)
	}
}
