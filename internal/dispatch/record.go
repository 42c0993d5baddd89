package dispatch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pushd/pushd/internal/outcome"
)

// recordTimeout bounds the bookkeeping after the sends, which runs on even
// when the attempt's context has ended.
const recordTimeout = 30 * time.Second

// record marks the dead tokens, decides the fate of the devices left to
// retry (retry policy), and records every answer in one batch. The pushes
// are out: what the providers said is recorded even when the attempt's
// context has ended (asynq's timeout, shutdown), or the retry would push
// the devices that accepted the message again.
func (p *Pipeline) record(ctx context.Context, a *attempt) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	errs := p.markInvalid(ctx, a)
	p.logRefusals(a)

	giveUp, why := p.cfg.Retry.decide(a)
	for i, d := range a.pending {
		res := a.results[i]
		if errs.unmarked[i] && !a.last {
			// Still to retry, so the retry tries the token, and
			// marking it, again. The budget's last attempt records
			// the answer: the token's next push marks it.
			res = Result{Outcome: outcome.Retrying, Reason: "dead token not marked yet: " + res.Reason, Route: res.Route}
		}
		w := ""
		if res.Outcome == outcome.Retrying && giveUp {
			// The trace says why the retries ended, then the last
			// answer: "throttled: TooManyRequests".
			res.Outcome, res.Reason, w = outcome.Failed, why+": "+res.Reason, why
		}
		a.ledger.moveDevice(d, res, w)
	}
	if err := a.ledger.flush(ctx); err != nil {
		errs.list = append(errs.list, err)
	}
	return errors.Join(errs.list...)
}

type markErrors struct {
	list     []error
	unmarked map[int]bool
}

// markInvalid marks the dead tokens, one statement per provider and
// reason, not one per device: a large job can carry many.
func (p *Pipeline) markInvalid(ctx context.Context, a *attempt) markErrors {
	type deadKey struct{ provider, reason string }
	dead := make(map[deadKey][]int)
	for i, d := range a.pending {
		if a.results[i].Outcome == outcome.InvalidToken {
			k := deadKey{string(d.Provider), a.results[i].Reason}
			dead[k] = append(dead[k], i)
		}
	}
	errs := markErrors{unmarked: make(map[int]bool)}
	for k, idx := range dead {
		tokens := make([]string, len(idx))
		for j, i := range idx {
			tokens[j] = a.pending[i].Token
		}
		if _, err := p.cfg.Registry.MarkInvalid(ctx, a.job.AppID, k.provider, k.reason, tokens, a.now); err != nil {
			errs.list = append(errs.list, fmt.Errorf("mark %d tokens invalid: %w", len(tokens), err))
			for _, i := range idx {
				errs.unmarked[i] = true
			}
		}
	}
	return errs
}

// logRefusals logs what providers refused: a content bug or a credential
// to fix, worth a line, but one per job and reason, not one per device.
func (p *Pipeline) logRefusals(a *attempt) {
	type refusal struct {
		o                outcome.Outcome
		provider, reason string
	}
	refused := make(map[refusal]int)
	for i, d := range a.pending {
		if o := a.results[i].Outcome; o == outcome.Rejected || o == outcome.AuthError {
			refused[refusal{o, string(d.Provider), a.results[i].Reason}]++
		}
	}
	for r, n := range refused {
		p.log.Warn("push refused", "app", a.job.AppID, "message", a.job.MessageID, "outcome", r.o, "provider", r.provider, "reason", r.reason, "devices", n)
	}
}
