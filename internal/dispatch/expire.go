package dispatch

import (
	"context"

	"github.com/pushd/pushd/internal/installations"
	"github.com/pushd/pushd/internal/outcome"
)

// expire ends an attempt of a job whose expiry has passed: its recipients
// not yet on record, and its devices still waiting for a retry, are
// expired; what earlier attempts settled stays as it is.
func (p *Pipeline) expire(ctx context.Context, a *attempt) error {
	exp := a.job.Expiry()
	if exp.IsZero() || a.now.Before(exp) {
		return nil
	}
	a.done = true
	for _, c := range a.open {
		if !a.ledger.onRecord(c) {
			a.ledger.settleRecipient(c, outcome.Expired, "", "")
			continue
		}
		// The message outlived its use while these devices waited for
		// a retry: they get nothing, and the trace says why.
		for _, e := range a.ledger.unsettledDevices(c) {
			d := installations.Installation{ID: e.row.InstallationID, ClientID: c}
			a.ledger.moveDevice(d, Result{Outcome: outcome.Expired}, "")
		}
	}
	return a.ledger.flush(ctx)
}
