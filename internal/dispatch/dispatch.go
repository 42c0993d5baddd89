// Package dispatch is the pipeline that turns one "recipients offline" job
// into pushes. One attempt of a job runs these stages, each in its own
// file, over one value that carries the attempt (attempt.go):
//
//	expire.go   drop a job that outlived its use
//	mute.go     drop recipients who muted the conversation
//	lookup.go   find the remaining recipients' devices
//	content.go  resolve the job's content, and each device's badge
//	claim.go    put devices on record before their badges count the message
//	send.go     fan out to each provider's Sender (sender.go)
//	record.go   mark dead tokens, record every answer, decide the retry
//
// What a delivery may become, and when it is final, is decided in one
// place: state.go. The retry policy is retry.go; the asynq handler is
// worker.go. Every stage works on the whole job at once: one query for
// mutes, one for installations, one write per step on record, sends in
// parallel. dispatch names no provider: Senders are registered by the
// provider name installations carry.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/pushd/pushd/internal/content"
	"github.com/pushd/pushd/internal/installations"
	"github.com/pushd/pushd/internal/mute"
	"github.com/pushd/pushd/internal/outcome"
	"github.com/pushd/pushd/pushjob"
)

// Mutes reports the active mutes of a conversation's recipients.
type Mutes interface {
	Active(ctx context.Context, app, conv string, clients []string, now time.Time) (map[string]mute.Mute, error)
}

// Registry is the device registry as the pipeline uses it.
type Registry interface {
	ValidForClients(ctx context.Context, app string, clients []string) ([]installations.Installation, error)
	// LastInvalid returns, for each of clients that has any, its most
	// recently invalidated installation: why a recipient without a valid
	// device has none.
	LastInvalid(ctx context.Context, app string, clients []string) (map[string]installations.Installation, error)
	MarkInvalid(ctx context.Context, app, provider, reason string, tokens []string, at time.Time) (int64, error)
	IncrementBadges(ctx context.Context, app string, ids []string) (map[string]int, error)
}

// Deliveries is the per-message record: the trace an operator reads, and
// what keeps a retry from pushing a device twice.
type Deliveries interface {
	// TraceClients reads what is on record for the message's clients: a
	// job of a message split into child jobs reads its own recipients'.
	TraceClients(ctx context.Context, app, messageID string, clients []string) ([]installations.Delivery, error)
	Record(ctx context.Context, app, messageID string, rows []installations.Delivery) error
}

// App is what the pipeline needs of a configured app.
type App struct {
	Defaults content.Defaults
}

// Observer counts, for metrics.
type Observer interface {
	// Observe counts n recipients or devices that reached the final
	// outcome o; why is a bounded class of reason (no_device:
	// never_registered or all_invalid; failed: throttled or
	// retries_exhausted), or empty.
	Observe(app string, o outcome.Outcome, why string, n int)
	// Attempt counts n pushes of one provider that met the same answer,
	// final or not.
	Attempt(app, provider string, o outcome.Outcome, reason string, n int)
}

// Config wires a Pipeline.
type Config struct {
	Apps       map[string]App
	Mutes      Mutes
	Registry   Registry
	Deliveries Deliveries
	// Senders deliver each provider's devices, keyed by the provider name
	// installations carry (apns, fcm, ...). A device of a provider
	// without a Sender is no_credentials.
	Senders  map[string]Sender
	Observer Observer
	Logger   *slog.Logger
	// Retry is the retry policy; zero fields take the defaults.
	Retry RetryPolicy
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Pipeline processes jobs.
type Pipeline struct {
	cfg Config
	log *slog.Logger
}

// New returns a pipeline.
func New(cfg Config) (*Pipeline, error) {
	switch {
	case cfg.Mutes == nil, cfg.Registry == nil, cfg.Deliveries == nil:
		return nil, errors.New("dispatch: mutes, registry and deliveries are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Retry = cfg.Retry.withDefaults()
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Pipeline{cfg: cfg, log: log}, nil
}

// ErrUnknownApp is returned for a job naming an app that is not configured.
var ErrUnknownApp = errors.New("unknown app")

// Process runs one attempt of job through every stage, in order. last
// says the job's retry budget is spent: devices still to retry after this
// attempt are failed. The Report says what is left to retry, and when.
func (p *Pipeline) Process(ctx context.Context, job pushjob.Job, last bool) (*Report, error) {
	app, ok := p.cfg.Apps[job.AppID]
	if !ok {
		return nil, fmt.Errorf("dispatch: app %q: %w", job.AppID, ErrUnknownApp)
	}
	a, err := p.begin(ctx, job, app, last)
	if err != nil {
		return nil, err
	}
	for _, stage := range []struct {
		name string
		run  func(context.Context, *attempt) error
	}{
		{"expire", p.expire},
		{"mute", p.mute},
		{"lookup", p.lookup},
		{"content", p.content},
		{"claim", p.claim},
		{"send", p.send},
		{"record", p.record},
	} {
		if a.done {
			break
		}
		if err := stage.run(ctx, a); err != nil {
			return nil, fmt.Errorf("dispatch: %s: %w", stage.name, err)
		}
	}
	return a.report(), nil
}

type nopObserver struct{}

func (nopObserver) Observe(string, outcome.Outcome, string, int)         {}
func (nopObserver) Attempt(string, string, outcome.Outcome, string, int) {}
