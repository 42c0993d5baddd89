package dispatch

import (
	"context"
	"fmt"

	"github.com/pushd/pushd/internal/outcome"
)

// claim makes a badge "Increment" count the message once. The devices
// whose stored badge the message bumps go on record (in one batch with the
// recipients settled so far) before their badges move and before any push
// leaves: a retry, or a crash and the re-run after it, finds them claimed
// and does not bump again. A crash in between costs a badge a count rather
// than adding one twice. Without a badge to bump there is nothing to
// claim: the recipients and every answer go on record in the record step's
// one batch, so a job costs one write.
func (p *Pipeline) claim(ctx context.Context, a *attempt) error {
	if len(a.bump) == 0 {
		return nil
	}
	bump := make(map[string]bool, len(a.bump))
	for _, id := range a.bump {
		bump[id] = true
	}
	for _, d := range a.pending {
		if bump[d.ID] {
			a.ledger.moveDevice(d, Result{Outcome: outcome.Retrying, Reason: reasonSending}, "")
		}
	}
	if err := a.ledger.flush(ctx); err != nil {
		return err
	}
	got, err := p.cfg.Registry.IncrementBadges(ctx, a.job.AppID, a.bump)
	if err != nil {
		return fmt.Errorf("increment badges: %w", err)
	}
	for id, n := range got {
		a.badges[id] = n
	}
	return nil
}
