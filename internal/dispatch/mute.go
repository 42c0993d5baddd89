package dispatch

import (
	"context"
	"fmt"

	"github.com/pushd/pushd/internal/mute"
	"github.com/pushd/pushd/internal/outcome"
)

// mute drops the recipients who muted the conversation, unless the job is
// forced or a mute lets their mention through: one query for all of them.
// Recipients already on record passed this check on an earlier attempt.
func (p *Pipeline) mute(ctx context.Context, a *attempt) error {
	if a.job.Force {
		// A forced job pushes to the muted too: nothing to look up.
		return nil
	}
	var ask []string
	for _, c := range a.open {
		if !a.ledger.onRecord(c) {
			ask = append(ask, c)
		}
	}
	if len(ask) == 0 {
		return nil
	}
	active, err := p.cfg.Mutes.Active(ctx, a.job.AppID, a.job.ConversationID, ask, a.now)
	if err != nil {
		return fmt.Errorf("mutes: %w", err)
	}
	_, dropped := mute.Decide(ask, active, a.job.Mentions, a.job.MentionAll, false)
	if len(dropped) == 0 {
		return nil
	}
	keep := a.open[:0]
	for _, c := range a.open {
		if _, muted := dropped[c]; muted {
			a.ledger.settleRecipient(c, outcome.Muted, "", "")
			continue
		}
		keep = append(keep, c)
	}
	a.open = keep
	return nil
}
