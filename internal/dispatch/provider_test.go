package dispatch_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/content"
	"github.com/pushd/pushd/internal/dispatch"
	"github.com/pushd/pushd/internal/installations"
	"github.com/pushd/pushd/internal/mute"
	"github.com/pushd/pushd/internal/outcome"
	"github.com/pushd/pushd/internal/storage/storagetest"
	"github.com/pushd/pushd/pushjob"
)

// pigeon is a provider dispatch has never heard of: a Sender registered
// under its name is all it takes to add it.
type pigeon struct {
	mu      sync.Mutex
	batches []*dispatch.Batch
	// answer says what a token meets on its n-th push.
	answer func(token string, n int) dispatch.Result
	sent   map[string]int
}

func (p *pigeon) Send(ctx context.Context, b *dispatch.Batch) []dispatch.Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.batches = append(p.batches, b)
	out := make([]dispatch.Result, len(b.Devices))
	for i, d := range b.Devices {
		out[i] = p.answer(d.Token, p.sent[d.Token])
		p.sent[d.Token]++
	}
	return out
}

// pigeonRegistry is the real registry, with pigeon devices beside it: the
// registry accepts only the providers it knows, and this test is about
// dispatch, not it.
type pigeonRegistry struct {
	*installations.Store
	devices []installations.Installation
	marked  []string
}

func (r *pigeonRegistry) ValidForClients(ctx context.Context, app string, clients []string) ([]installations.Installation, error) {
	list, err := r.Store.ValidForClients(ctx, app, clients)
	for _, d := range r.devices {
		if d.Valid && slices.Contains(clients, d.ClientID) {
			list = append(list, d)
		}
	}
	return list, err
}

func (r *pigeonRegistry) MarkInvalid(ctx context.Context, app, provider, reason string, tokens []string, at time.Time) (int64, error) {
	if provider != "pigeon" {
		return r.Store.MarkInvalid(ctx, app, provider, reason, tokens, at)
	}
	r.marked = append(r.marked, tokens...)
	for i := range r.devices {
		if slices.Contains(tokens, r.devices[i].Token) {
			r.devices[i].Valid = false
		}
	}
	return int64(len(tokens)), nil
}

// A job reaches a provider registered in Senders under a name dispatch
// has never heard of, through every stage: its devices routed to it in one
// batch with their content and badges, its answers recorded and counted,
// its dead tokens marked, and its transient ones retried alone.
func TestProcessUnknownProviderSender(t *testing.T) {
	db := storagetest.SQLite(t)
	reg := &pigeonRegistry{Store: installations.NewStore(db), devices: []installations.Installation{
		{ID: "loft-ann", AppID: "default", ClientID: "ann", Provider: "pigeon", Platform: installations.PlatformAndroid, Token: "ann", Valid: true, Badge: 4},
		{ID: "loft-ben", AppID: "default", ClientID: "ben", Provider: "pigeon", Platform: installations.PlatformAndroid, Token: "ben", Valid: true},
		{ID: "loft-cy", AppID: "default", ClientID: "cy", Provider: "pigeon", Platform: installations.PlatformAndroid, Token: "cy", Valid: true},
	}}
	pg := &pigeon{sent: make(map[string]int), answer: func(token string, n int) dispatch.Result {
		switch {
		case token == "ben":
			return dispatch.Result{Outcome: outcome.InvalidToken, Reason: "NoSuchLoft"}
		case token == "cy" && n == 0:
			return dispatch.Result{Outcome: outcome.Retrying, Reason: "Storm", RetryAfter: 3 * time.Second}
		}
		return dispatch.Result{Outcome: outcome.Delivered, ProviderID: "ring-" + token, Route: "north"}
	}}
	obs := &observer{}
	del := installations.NewDeliveries(db)
	defaults := content.Defaults{Title: "${fromClientId}", Body: "New message in ${convId}", Badge: &pushjob.Badge{Value: 7}}
	p, err := dispatch.New(dispatch.Config{
		Apps:  map[string]dispatch.App{"default": {Defaults: defaults}},
		Mutes: &noMutes{}, Registry: reg, Deliveries: del, Observer: obs,
		Senders: map[string]dispatch.Sender{"pigeon": pg},
		Now:     func() time.Time { return t0 },
	})
	if err != nil {
		t.Fatal(err)
	}
	job := newJob("m1", "ann", "ben", "cy", "dot")
	rep, err := p.Process(context.Background(), job, false)
	if err != nil {
		t.Fatal(err)
	}
	sameMap(t, "first attempt", outcomes(rep), map[string]string{
		"ann/loft-ann": "delivered", "ben/loft-ben": "invalid_token", "cy/loft-cy": "retrying", "dot": "no_device",
	})
	if rep.Pending() != 1 || rep.RetryAfter != 3*time.Second || rep.Throttled {
		t.Errorf("report: pending %d after %v throttled %v; want cy, after 3s, not throttled", rep.Pending(), rep.RetryAfter, rep.Throttled)
	}
	if len(pg.batches) != 1 {
		t.Fatalf("%d batches, want the job's pigeon devices in one", len(pg.batches))
	}
	b := pg.batches[0]
	if b.AppID != "default" || b.Job.MessageID != "m1" || len(b.Devices) != 3 || b.Content.Android.Title != "zoe" || !b.Now.Equal(t0) {
		t.Errorf("batch: app %q message %q devices %d title %q now %v", b.AppID, b.Job.MessageID, len(b.Devices), b.Content.Android.Title, b.Now)
	}
	if n := b.Badge(b.Devices[0]); n == nil || *n != 7 {
		t.Errorf("ann's badge %v, want the app's 7", n)
	}
	if !slices.Equal(reg.marked, []string{"ben"}) {
		t.Errorf("marked %v, want ben's token", reg.marked)
	}
	sameMap(t, "trace", traceOf(t, del, "m1"), map[string]string{
		"ann/loft-ann": "delivered", "ben/loft-ben": "invalid_token", "cy/loft-cy": "retrying", "dot": "no_device",
	})

	// The retry pushes cy alone.
	rep, err = p.Process(context.Background(), job, false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Pending() != 0 || len(pg.batches) != 2 || len(pg.batches[1].Devices) != 1 || pg.batches[1].Devices[0].Token != "cy" {
		t.Errorf("retry: pending %d, batches %d; want cy alone, delivered", rep.Pending(), len(pg.batches))
	}
	sameMap(t, "trace after the retry", traceOf(t, del, "m1"), map[string]string{
		"ann/loft-ann": "delivered", "ben/loft-ben": "invalid_token", "cy/loft-cy": "delivered", "dot": "no_device",
	})
	if d := device(t, rep, "cy", "loft-cy"); d.Provider != "pigeon" || d.Outcome != outcome.Delivered {
		t.Errorf("cy on the retry: %+v, want delivered by pigeon", d)
	}
	for o, want := range map[outcome.Outcome]int{outcome.Delivered: 2, outcome.InvalidToken: 1, outcome.NoDevice: 1, outcome.Retrying: 0} {
		if got := obs.get(o); got != want {
			t.Errorf("%s counted %d, want %d", o, got, want)
		}
	}
}

// A device of a provider without a Sender is no_credentials: nothing
// else is pushed differently.
func TestProcessProviderWithoutSender(t *testing.T) {
	w := newWorld(t, withoutAPNs())
	w.iphone("iphone-alice", "alice", installations.Production, 1)
	rep := w.process(newJob("m1", "alice"), true)
	if d := device(t, rep, "alice", "iphone-alice"); d.Outcome != outcome.NoCredentials {
		t.Errorf("alice: %+v, want no_credentials", d)
	}
}

type noMutes struct{}

func (*noMutes) Active(context.Context, string, string, []string, time.Time) (map[string]mute.Mute, error) {
	return nil, nil
}

func traceOf(t *testing.T, del *installations.Deliveries, messageID string) map[string]string {
	t.Helper()
	w := &world{t: t, del: del}
	return w.trace(messageID)
}
