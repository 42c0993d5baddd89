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
type DeliveryPruner struct{ *periodic.Pruner }

// deliveryPrunable is what a DeliveryPruner prunes: *Deliveries, or a fake
// in tests.
type deliveryPrunable interface {
	Prune(ctx context.Context, before time.Time) (int64, error)
}

// NewDeliveryPruner returns a pruner of d's records older than retention,
// not yet started.
func NewDeliveryPruner(d *Deliveries, retention time.Duration, log *slog.Logger) *DeliveryPruner {
	return newDeliveryPruner(d, retention, log, time.Now, pruneInterval)
}

func newDeliveryPruner(d deliveryPrunable, retention time.Duration, log *slog.Logger, now func() time.Time, interval time.Duration) *DeliveryPruner {
	return &DeliveryPruner{periodic.NewPruner("delivery records", interval, log, func(ctx context.Context) (int64, error) {
		return d.Prune(ctx, now().Add(-retention))
	})}
}
