package dispatch

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/hibiken/asynq"

	"github.com/pushd/pushd/internal/outcome"
	"github.com/pushd/pushd/pushjob"
)

// Worker is the asynq handler for push:offline tasks.
type Worker struct {
	p   *Pipeline
	log *slog.Logger
	// Rejected counts jobs archived at once because they cannot run.
	Rejected func(reason string)
	// Split, when set, splits jobs larger than its size into child jobs.
	Split *Splitter

	// mu guards the attempts and outcomes since the last summary.
	mu       sync.Mutex
	attempts int
	outcomes map[outcome.Outcome]int
}

// NewWorker returns the asynq handler around p.
func NewWorker(p *Pipeline, log *slog.Logger) *Worker {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Worker{p: p, log: log}
}

// ProcessTask runs one attempt of a job: the validate stage, then the
// pipeline. A job that cannot be decoded, fails validation or names an
// unknown app is archived at once with a reason an operator can read in
// asynqmon: retrying would not help.
func (w *Worker) ProcessTask(ctx context.Context, t *asynq.Task) error {
	job, err := pushjob.Decode(t.Payload())
	if err == nil {
		// A job that carries no timestamp (one an IM server enqueued
		// itself, not through pushjob.NewTask) is not stamped with this
		// attempt's time, or its TTL and the retry bounds would restart
		// on every attempt: the pipeline anchors it on its record.
		job.ApplyDefaults()
		err = job.Validate()
	}
	if err != nil {
		w.reject("invalid_job")
		return fmt.Errorf("%w: invalid job: %v", asynq.SkipRetry, err)
	}
	if _, ok := w.p.cfg.Apps[job.AppID]; !ok {
		w.reject("unknown_app")
		return fmt.Errorf("%w: dispatch: app %q: %v", asynq.SkipRetry, job.AppID, ErrUnknownApp)
	}
	// The retry count says only how much of the budget is spent; what the
	// job already did is read from its record.
	retried, _ := asynq.GetRetryCount(ctx)
	if w.Split.splits(job) {
		queue, ok := asynq.GetQueueName(ctx)
		if !ok {
			queue = job.Priority.Queue()
		}
		n, err := w.Split.split(ctx, job, queue)
		if err != nil {
			return err
		}
		w.log.Debug("job split", "app", job.AppID, "message_id", job.MessageID, "recipients", len(job.Recipients),
			"children", (len(job.Recipients)+w.Split.Size-1)/w.Split.Size, "enqueued_now", n, "attempt", retried+1)
		return nil
	}
	maxRetry, ok := asynq.GetMaxRetry(ctx)
	last := ok && retried >= maxRetry
	rep, err := w.p.Process(ctx, job, last)
	if err != nil {
		return err
	}
	w.logReport(job, rep, retried)
	n := rep.Pending()
	if n == 0 {
		return nil
	}
	return &RetryError{Pending: n, After: rep.RetryAfter, Throttled: rep.Throttled}
}

func (w *Worker) reject(reason string) {
	if w.Rejected != nil {
		w.Rejected(reason)
	}
}

// logReport logs one attempt at debug level: a line per job would be
// most of a busy pushd's log. LogSummary tells the totals at INFO.
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
	w.mu.Lock()
	w.attempts++
	if w.outcomes == nil {
		w.outcomes = make(map[outcome.Outcome]int)
	}
	for o, n := range counts {
		w.outcomes[o] += n
	}
	w.mu.Unlock()
	if !w.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	attrs := []any{"app", job.AppID, "message_id", job.MessageID, "recipients", len(job.Recipients), "attempt", retried + 1}
	for _, o := range outcome.All() {
		if n := counts[o]; n > 0 {
			attrs = append(attrs, string(o), n)
		}
	}
	w.log.Debug("job processed", attrs...)
}

// LogSummary logs, at INFO, the job attempts processed since the last
// summary and what became of their recipients and devices, and starts
// counting anew; it logs nothing when there were none.
func (w *Worker) LogSummary() {
	w.mu.Lock()
	n, counts := w.attempts, w.outcomes
	w.attempts, w.outcomes = 0, nil
	w.mu.Unlock()
	if n == 0 {
		return
	}
	attrs := []any{"attempts", n}
	for _, o := range outcome.All() {
		if c := counts[o]; c > 0 {
			attrs = append(attrs, string(o), c)
		}
	}
	w.log.Info("jobs processed", attrs...)
}
