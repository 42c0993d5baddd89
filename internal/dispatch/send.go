package dispatch

import (
	"context"
	"strconv"
	"sync"

	"github.com/pushd/pushd/internal/installations"
	"github.com/pushd/pushd/internal/outcome"
)

// send fans the pending devices out by provider, each provider's batch to
// its Sender, all at once; each Sender bounds its own pushes in flight. A
// device whose provider has no Sender is no_credentials.
func (p *Pipeline) send(ctx context.Context, a *attempt) error {
	a.results = make([]Result, len(a.pending))
	batches := make(map[string][]int)
	for i, d := range a.pending {
		prov := string(d.Provider)
		if p.cfg.Senders[prov] == nil {
			// Registered by a pushd that sends through a provider
			// this one does not (a rollback): not this device's fault.
			a.results[i] = Result{Outcome: outcome.NoCredentials, Reason: "this pushd does not send through provider " + strconv.Quote(prov)}
			continue
		}
		batches[prov] = append(batches[prov], i)
	}
	var wg sync.WaitGroup
	for prov, idx := range batches {
		b := &Batch{
			AppID: a.job.AppID, Job: a.job, Content: a.content, Now: a.now,
			Devices: make([]installations.Installation, len(idx)), Badges: a.badges,
		}
		for j, i := range idx {
			b.Devices[j] = a.pending[i]
		}
		wg.Go(func() {
			res := p.cfg.Senders[prov].Send(ctx, b)
			for j, i := range idx {
				switch {
				case j >= len(res):
					// A Sender that lost a device's answer: the device
					// is retried rather than lost.
					a.results[i] = Result{Outcome: outcome.Retrying, Reason: "no answer from the " + prov + " sender"}
				case !isAnswer(res[j].Outcome):
					// Nor may an outcome no answer can be leave the
					// device waiting for good.
					a.results[i] = Result{Outcome: outcome.Retrying, Reason: "the " + prov + " sender answered " + strconv.Quote(string(res[j].Outcome))}
				default:
					a.results[i] = res[j]
				}
			}
		})
	}
	wg.Wait()
	// Counted per answer, not per device: a group's thousands of
	// deliveries are one call.
	type answer struct {
		provider string
		o        outcome.Outcome
		reason   string
	}
	answers := make(map[answer]int)
	for i, d := range a.pending {
		answers[answer{string(d.Provider), a.results[i].Outcome, a.results[i].Reason}]++
	}
	for k, n := range answers {
		p.cfg.Observer.Attempt(a.job.AppID, k.provider, k.o, k.reason, n)
	}
	return nil
}
