package dispatch

import (
	"context"
	"time"

	"github.com/pushd/pushd/internal/content"
	"github.com/pushd/pushd/internal/installations"
	"github.com/pushd/pushd/internal/outcome"
	"github.com/pushd/pushd/pushjob"
)

// attempt is one run of a job through the stages: what each stage reads
// and what it leaves for the next.
type attempt struct {
	job pushjob.Job
	app App
	now time.Time
	// last says the retry budget is spent.
	last bool
	// ledger is the message's delivery record: what earlier attempts
	// settled, and this attempt's changes to it.
	ledger *ledger

	// open are the recipients this attempt still decides about: not
	// settled as a whole on an earlier attempt; mute and lookup narrow it.
	open []string
	// pending are the devices to push to, and results their answers,
	// index for index.
	pending []installations.Installation
	results []Result

	content content.Resolved
	badges  map[string]int
	// bump are the pending devices whose stored badge this message
	// increments.
	bump []string

	// done ends the attempt before the next stage.
	done bool
	// retryAfter and throttled say when the devices left are retried.
	retryAfter time.Duration
	throttled  bool
}

// begin reads the message's record and opens the attempt.
func (p *Pipeline) begin(ctx context.Context, job pushjob.Job, app App, last bool) (*attempt, error) {
	now := p.cfg.Now()
	l, err := p.openLedger(ctx, job, now)
	if err != nil {
		return nil, err
	}
	if job.Timestamp.IsZero() {
		// No timestamp came with the job: its TTL and the retry bounds
		// count from its first attempt, which its record keeps.
		job.Timestamp = l.since(now)
	}
	a := &attempt{job: job, app: app, now: now, last: last, ledger: l}
	for _, c := range job.Recipients {
		if !l.recipientSettled(c) {
			a.open = append(a.open, c)
		}
	}
	return a, nil
}

// RecipientResult is what became of one recipient: an outcome per device,
// or one outcome for a recipient no device was tried for.
type RecipientResult struct {
	ClientID string
	Devices  []DeviceResult
	// Outcome is set when no device was tried: muted, no_device, expired.
	Outcome outcome.Outcome
	// Reason says why, for no_device: never_registered, or all_invalid
	// with the last device's death.
	Reason string
}

// DeviceResult is what became of one push to one device.
type DeviceResult struct {
	InstallationID string
	Provider       string
	// Route is where the push went: the APNs environment that answered,
	// or the FCM project.
	Route   string
	Outcome outcome.Outcome
	// Reason is the provider's reason or error code, when it gave one.
	Reason string
	// Throttled says the provider asked to slow down.
	Throttled bool
}

// Report is what a job's attempt did.
type Report struct {
	Recipients []RecipientResult
	// RetryAfter is how long to wait before retrying the devices left,
	// by the retry policy: the providers' Retry-After, and at least the
	// throttling floor when every device left was throttled.
	RetryAfter time.Duration
	// Throttled says every device left to retry met a rate limit: the
	// retry spends no budget.
	Throttled bool
}

// Pending reports how many devices are left for a retry.
func (r *Report) Pending() int {
	n := 0
	for _, rr := range r.Recipients {
		for _, d := range rr.Devices {
			if d.Outcome == outcome.Retrying {
				n++
			}
		}
	}
	return n
}

// report is what the attempt leaves on record, recipient by recipient in
// the job's order.
func (a *attempt) report() *Report {
	rep := &Report{Recipients: make([]RecipientResult, len(a.job.Recipients)), RetryAfter: a.retryAfter, Throttled: a.throttled}
	for i, c := range a.job.Recipients {
		rep.Recipients[i] = a.ledger.recipient(c)
	}
	return rep
}
