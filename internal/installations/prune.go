package installations

import (
	"context"
	"log/slog"
	"time"

	"github.com/pushd/pushd/internal/periodic"
)

// DeliveryRetention is how long delivery records are kept. They are the
// trace an operator reads (GET /v1/messages/{id}) and the idempotency
// record that keeps a retried job from pushing a device twice, so they must
// outlive the longest life of a message on the queue: pushjob.MaxRetry (12)
// retries with backoff capped at 5 minutes, plus asynq's retention of the
// finished task id (pushjob.Retention, 24 h), within which the same message
// is refused as a duplicate. A week covers that many times over and leaves
// an operator days to look into a complaint.
const DeliveryRetention = 7 * 24 * time.Hour

// pruneInterval is how often delivery records past DeliveryRetention are
// deleted.
const pruneInterval = time.Hour

// DeliveryPruner deletes delivery records older than DeliveryRetention, at
// start and then every hour, until stopped, and logs how many went.
type DeliveryPruner struct {
	loop *periodic.Loop
	del  deliveryPrunable
	log  *slog.Logger
	now  func() time.Time
}

// deliveryPrunable is what a DeliveryPruner prunes: *Deliveries, or a fake
// that fails on demand in tests.
type deliveryPrunable interface {
	Prune(ctx context.Context, before time.Time) (int64, error)
}

// NewDeliveryPruner returns a pruner of d's records, not yet started.
func NewDeliveryPruner(d *Deliveries, log *slog.Logger) *DeliveryPruner {
	return newDeliveryPruner(d, log, time.Now, pruneInterval)
}

func newDeliveryPruner(d deliveryPrunable, log *slog.Logger, now func() time.Time, interval time.Duration) *DeliveryPruner {
	p := &DeliveryPruner{del: d, log: log, now: now}
	p.loop = periodic.New(interval, p.prune)
	return p
}

// Start prunes at once, in the background, and then every hour.
func (p *DeliveryPruner) Start() { p.loop.Start() }

// Stop ends the pruning, cancelling a prune in progress, and waits for it
// until ctx ends.
func (p *DeliveryPruner) Stop(ctx context.Context) error { return p.loop.Stop(ctx) }

func (p *DeliveryPruner) prune(ctx context.Context) {
	n, err := p.del.Prune(ctx, p.now().Add(-DeliveryRetention))
	switch {
	case err != nil && ctx.Err() != nil:
		// Stopping: the next start prunes.
	case err != nil:
		p.log.Warn("prune delivery records", "err", err)
	case n > 0:
		p.log.Info("pruned delivery records", "count", n, "older_than", DeliveryRetention)
	}
}
