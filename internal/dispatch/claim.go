package dispatch

import (
	"context"

	"github.com/pushd/pushd/internal/outcome"
)

// claim puts the attempt on record before any badge moves or push leaves,
// in one batch with the recipients settled so far: the trace shows the
// devices in flight, one whose answer cannot be recorded (or a crash)
// stays retrying rather than vanishing, and no later attempt increments a
// badge again. A crash in between costs a badge a count rather than
// adding one twice.
func (p *Pipeline) claim(ctx context.Context, a *attempt) error {
	for _, d := range a.pending {
		a.ledger.moveDevice(d, Result{Outcome: outcome.Retrying, Reason: reasonSending}, "")
	}
	if err := a.ledger.flush(ctx); err != nil {
		return err
	}
	if len(a.pending) == 0 {
		a.done = true
	}
	return nil
}
