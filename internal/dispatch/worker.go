package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"

	"github.com/pushd/pushd/internal/outcome"
	"github.com/pushd/pushd/pushjob"
)

// RetryError asks asynq to run the job again for the devices that have not
// accepted the message yet.
type RetryError struct {
	Pending int
	// After is the provider's Retry-After, if it gave one.
	After time.Duration
	// Throttled means every pending device met a rate limit: waiting is
	// the cure, so the attempt does not count against the retry budget.
	Throttled bool
}

func (e *RetryError) Error() string {
	s := fmt.Sprintf("dispatch: %d devices to retry", e.Pending)
	if e.Throttled {
		s += " (throttled)"
	}
	if e.After > 0 {
		s += fmt.Sprintf(" after %v", e.After)
	}
	return s
}

// Worker is the asynq handler for push:offline tasks.
type Worker struct {
	p   *Pipeline
	log *slog.Logger
	// Rejected counts jobs archived at once because they cannot run.
	Rejected func(reason string)
}

// NewWorker returns the asynq handler around p.
func NewWorker(p *Pipeline, log *slog.Logger) *Worker {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Worker{p: p, log: log}
}

// ProcessTask runs one attempt of a job. A job that cannot be decoded,
// fails validation or names an unknown app is archived at once with a
// reason an operator can read in asynqmon: retrying would not help.
func (w *Worker) ProcessTask(ctx context.Context, t *asynq.Task) error {
	job, err := pushjob.Decode(t.Payload())
	if err == nil {
		job.Normalize()
		err = job.Validate()
	}
	if err != nil {
		w.reject("invalid_job")
		return fmt.Errorf("%w: invalid job: %v", asynq.SkipRetry, err)
	}
	retried, _ := asynq.GetRetryCount(ctx)
	rep, err := w.p.Process(ctx, job, retried == 0)
	if errors.Is(err, ErrUnknownApp) {
		w.reject("unknown_app")
		return fmt.Errorf("%w: %v", asynq.SkipRetry, err)
	}
	if err != nil {
		return err
	}
	w.logReport(job, rep, retried)
	n := rep.Pending()
	if n == 0 {
		return nil
	}
	re := &RetryError{Pending: n, After: rep.RetryAfter, Throttled: rep.throttled()}
	if maxRetry, ok := asynq.GetMaxRetry(ctx); ok && retried >= maxRetry {
		// asynq archives the task after this attempt: say so in the trace
		// and the counters, so the devices do not vanish from view.
		if err := w.p.RecordFailed(ctx, job, rep); err != nil {
			return errors.Join(re, err)
		}
	}
	return re
}

func (w *Worker) reject(reason string) {
	if w.Rejected != nil {
		w.Rejected(reason)
	}
}

func (w *Worker) logReport(job pushjob.Job, rep *Report, retried int) {
	counts := make(map[outcome.Outcome]int)
	for _, r := range rep.Recipients {
		if r.Outcome != "" {
			counts[r.Outcome]++
		}
		for _, d := range r.Devices {
			counts[d.Outcome]++
		}
	}
	attrs := []any{"app", job.AppID, "message_id", job.MessageID, "recipients", len(job.Recipients), "attempt", retried + 1}
	for _, o := range outcome.All() {
		if n := counts[o]; n > 0 {
			attrs = append(attrs, string(o), n)
		}
	}
	w.log.Info("job processed", attrs...)
}

// throttled reports whether every device left to retry met a rate limit.
func (r *Report) throttled() bool {
	any := false
	for _, rr := range r.Recipients {
		for _, d := range rr.Devices {
			if d.Outcome != outcome.Retrying {
				continue
			}
			if !d.Throttled {
				return false
			}
			any = true
		}
	}
	return any
}

// IsFailure tells asynq whether an error spends the retry budget:
// throttling does not.
func IsFailure(err error) bool {
	var re *RetryError
	if errors.As(err, &re) && re.Throttled {
		return false
	}
	return true
}

// RetryDelay honours the provider's Retry-After, and otherwise backs off
// exponentially from one second to five minutes, plus up to half again of
// jitter so that many workers do not return at once.
func RetryDelay(n int, err error, _ *asynq.Task) time.Duration {
	var re *RetryError
	if errors.As(err, &re) && re.After > 0 {
		return re.After
	}
	d := min(time.Second<<min(n, 9), 5*time.Minute)
	return d + rand.N(d/2+1)
}
