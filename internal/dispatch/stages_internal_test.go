package dispatch

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/content"
	"github.com/pushd/pushd/internal/installations"
	"github.com/pushd/pushd/internal/mute"
	"github.com/pushd/pushd/internal/outcome"
	"github.com/pushd/pushd/pushjob"
)

// Each stage on its own, over fakes: the record as earlier attempts left
// it, and what the stage does to the attempt.

var now = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

type fakeRecord struct {
	rows     []installations.Delivery
	recorded []installations.Delivery
}

func (f *fakeRecord) Trace(context.Context, string, string) ([]installations.Delivery, error) {
	return f.rows, nil
}

func (f *fakeRecord) Record(_ context.Context, _, _ string, rows []installations.Delivery) error {
	f.recorded = append(f.recorded, rows...)
	return nil
}

type fakeMutes map[string]mute.Mute

func (f fakeMutes) Active(_ context.Context, _, _ string, clients []string, _ time.Time) (map[string]mute.Mute, error) {
	out := make(map[string]mute.Mute)
	for _, c := range clients {
		if m, ok := f[c]; ok {
			out[c] = m
		}
	}
	return out, nil
}

type fakeRegistry struct {
	valid   []installations.Installation
	invalid map[string]installations.Installation
	asked   []string
	bumped  []string
}

func (f *fakeRegistry) ValidForClients(_ context.Context, _ string, clients []string) ([]installations.Installation, error) {
	f.asked = append(f.asked, clients...)
	var out []installations.Installation
	for _, d := range f.valid {
		if slices.Contains(clients, d.ClientID) {
			out = append(out, d)
		}
	}
	return out, nil
}

func (f *fakeRegistry) LastInvalid(context.Context, string, []string) (map[string]installations.Installation, error) {
	return f.invalid, nil
}

func (f *fakeRegistry) MarkInvalid(context.Context, string, string, string, []string, time.Time) (int64, error) {
	return 0, nil
}

func (f *fakeRegistry) IncrementBadges(_ context.Context, _ string, ids []string) (map[string]int, error) {
	f.bumped = append(f.bumped, ids...)
	out := make(map[string]int)
	for _, id := range ids {
		out[id] = 42
	}
	return out, nil
}

func dev(id, client string) installations.Delivery {
	return installations.Delivery{InstallationID: id, ClientID: client, Outcome: string(outcome.Retrying), Reason: reasonSending}
}

func rec(client string, o outcome.Outcome) installations.Delivery {
	return installations.Delivery{ClientID: client, Outcome: string(o)}
}

func withOutcome(d installations.Delivery, o outcome.Outcome) installations.Delivery {
	d.Outcome = string(o)
	return d
}

// newAttempt opens an attempt of a job to recipients over a record.
func newAttempt(t *testing.T, job pushjob.Job, rows []installations.Delivery, mutes fakeMutes, reg *fakeRegistry) (*Pipeline, *attempt, *fakeRecord) {
	t.Helper()
	fr := &fakeRecord{rows: rows}
	if reg == nil {
		reg = &fakeRegistry{}
	}
	p, err := New(Config{Mutes: mutes, Registry: reg, Deliveries: fr, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	a, err := p.begin(context.Background(), job, App{}, false)
	if err != nil {
		t.Fatal(err)
	}
	return p, a, fr
}

func job(recipients ...string) pushjob.Job {
	return pushjob.Job{AppID: "default", MessageID: "m1", ConversationID: "c", Recipients: recipients, Timestamp: now.Add(-time.Minute)}
}

// recorded is what the attempt wrote: outcome by client or client/device.
func recorded(fr *fakeRecord) map[string]string {
	out := make(map[string]string)
	for _, r := range fr.recorded {
		k := r.ClientID
		if r.InstallationID != "" {
			k += "/" + r.InstallationID
		}
		out[k] = r.Outcome
	}
	return out
}

func TestExpireStage(t *testing.T) {
	for _, c := range []struct {
		name    string
		expires time.Time
		rows    []installations.Delivery
		want    map[string]string
		done    bool
	}{
		{name: "no expiry", want: map[string]string{}},
		{name: "not yet", expires: now.Add(time.Second), want: map[string]string{}},
		{name: "first attempt, expired", expires: now, done: true,
			want: map[string]string{"a": "expired", "b": "expired"}},
		{name: "retry, expired: only what waits", expires: now.Add(-time.Second), done: true,
			rows: []installations.Delivery{
				withOutcome(dev("a1", "a"), outcome.Delivered), dev("a2", "a"), rec("b", outcome.Muted),
			},
			want: map[string]string{"a/a2": "expired"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			j := job("a", "b")
			if !c.expires.IsZero() {
				j.ExpiresAt = &c.expires
			}
			p, a, fr := newAttempt(t, j, c.rows, nil, nil)
			if err := p.expire(context.Background(), a); err != nil {
				t.Fatal(err)
			}
			if got := recorded(fr); !maps.Equal(got, c.want) || a.done != c.done {
				t.Errorf("recorded %v done %v, want %v done %v", got, a.done, c.want, c.done)
			}
		})
	}
}

func TestMuteStage(t *testing.T) {
	muted := fakeMutes{"b": {ClientID: "b"}, "c": {ClientID: "c", AllowMentions: true}, "d": {ClientID: "d"}}
	for _, c := range []struct {
		name     string
		mentions []string
		force    bool
		rows     []installations.Delivery
		open     []string
		want     map[string]string
	}{
		{name: "muted dropped", open: []string{"a"}, want: map[string]string{"b": "muted", "c": "muted", "d": "muted"}},
		{name: "mention passes a mute that allows it", mentions: []string{"c", "d"}, open: []string{"a", "c"},
			want: map[string]string{"b": "muted", "d": "muted"}},
		{name: "forced", force: true, open: []string{"a", "b", "c", "d"}, want: map[string]string{}},
		{name: "on record: checked before", rows: []installations.Delivery{dev("d1", "d")},
			open: []string{"a", "d"}, want: map[string]string{"b": "muted", "c": "muted"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			j := job("a", "b", "c", "d")
			j.Mentions, j.Force = c.mentions, c.force
			p, a, fr := newAttempt(t, j, c.rows, muted, nil)
			if err := p.mute(context.Background(), a); err != nil {
				t.Fatal(err)
			}
			if err := a.ledger.flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := recorded(fr); !maps.Equal(got, c.want) || !slices.Equal(a.open, c.open) {
				t.Errorf("recorded %v open %v, want %v open %v", got, a.open, c.want, c.open)
			}
		})
	}
}

func TestLookupStage(t *testing.T) {
	phone := func(id, client string) installations.Installation {
		return installations.Installation{ID: id, ClientID: client, Provider: "apns", Valid: true}
	}
	for _, c := range []struct {
		name    string
		valid   []installations.Installation
		invalid map[string]installations.Installation
		rows    []installations.Delivery
		pending []string
		fresh   []string
		want    map[string]string
	}{
		{name: "devices found", valid: []installations.Installation{phone("a1", "a"), phone("a2", "a"), phone("b1", "b")},
			pending: []string{"a1", "a2", "b1"}, fresh: []string{"a1", "a2", "b1"}, want: map[string]string{}},
		{name: "never registered", valid: []installations.Installation{phone("a1", "a")},
			pending: []string{"a1"}, fresh: []string{"a1"}, want: map[string]string{"b": "no_device"}},
		{name: "all invalid", invalid: map[string]installations.Installation{"a": {ID: "a1", Provider: "fcm", InvalidReason: "UNREGISTERED", InvalidAt: now}},
			want: map[string]string{"a": "no_device", "b": "no_device"}},
		{name: "retry: settled skipped, waiting not fresh", valid: []installations.Installation{phone("a1", "a"), phone("a2", "a"), phone("b1", "b")},
			rows:    []installations.Delivery{withOutcome(dev("a1", "a"), outcome.Delivered), dev("a2", "a")},
			pending: []string{"a2", "b1"}, fresh: []string{"b1"}, want: map[string]string{}},
		{name: "retry: waiting device gone", valid: []installations.Installation{phone("b1", "b")},
			rows:    []installations.Delivery{withOutcome(dev("a1", "a"), outcome.InvalidToken), dev("a2", "a")},
			pending: []string{"b1"}, fresh: []string{"b1"}, want: map[string]string{"a/a2": "no_device"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			reg := &fakeRegistry{valid: c.valid, invalid: c.invalid}
			p, a, fr := newAttempt(t, job("a", "b"), c.rows, nil, reg)
			if err := p.lookup(context.Background(), a); err != nil {
				t.Fatal(err)
			}
			if err := a.ledger.flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			var pending []string
			for _, d := range a.pending {
				pending = append(pending, d.ID)
			}
			fresh := slices.Sorted(maps.Keys(a.fresh))
			if got := recorded(fr); !maps.Equal(got, c.want) || !slices.Equal(pending, c.pending) || !slices.Equal(fresh, c.fresh) {
				t.Errorf("recorded %v pending %v fresh %v, want %v pending %v fresh %v", got, pending, fresh, c.want, c.pending, c.fresh)
			}
		})
	}
}

func TestContentStageBadges(t *testing.T) {
	dev := func(id string, pf installations.Platform, badge int) installations.Installation {
		return installations.Installation{ID: id, Platform: pf, Badge: badge}
	}
	for _, c := range []struct {
		name  string
		badge *pushjob.Badge
		want  map[string]int
		bump  []string
	}{
		{name: "none", want: map[string]int{}},
		{name: "fixed", badge: &pushjob.Badge{Value: 3}, want: map[string]int{"ios-fresh": 3, "ios-retry": 3, "android": 3}},
		{name: "increment: fresh bumped once, retried keeps its count", badge: &pushjob.Badge{Increment: true},
			want: map[string]int{"ios-fresh": 42, "ios-retry": 5, "android": 42}, bump: []string{"ios-fresh", "android"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			reg := &fakeRegistry{}
			p, a, _ := newAttempt(t, job("a"), nil, nil, reg)
			a.app = App{Defaults: content.Defaults{Badge: c.badge}}
			a.pending = []installations.Installation{
				dev("ios-fresh", installations.PlatformIOS, 0), dev("ios-retry", installations.PlatformIOS, 5),
				dev("android", installations.PlatformAndroid, 0), dev("web", installations.PlatformWeb, 0),
			}
			a.fresh = map[string]bool{"ios-fresh": true, "android": true, "web": true}
			if err := p.content(context.Background(), a); err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(a.badges, c.want) || !slices.Equal(reg.bumped, c.bump) {
				t.Errorf("badges %v bumped %v, want %v bumped %v", a.badges, reg.bumped, c.want, c.bump)
			}
		})
	}
}

func TestRetryPolicy(t *testing.T) {
	retrying := func(after time.Duration, throttled bool) Result {
		return Result{Outcome: outcome.Retrying, RetryAfter: after, Throttled: throttled}
	}
	hour := now.Add(time.Hour)
	for _, c := range []struct {
		name      string
		results   []Result
		last      bool
		expires   time.Time
		sent      time.Time
		giveUp    bool
		why       string
		after     time.Duration
		throttled bool
	}{
		{name: "nothing left", results: []Result{{Outcome: outcome.Delivered}}},
		{name: "transient: provider's wait", results: []Result{retrying(5*time.Second, false), retrying(2*time.Second, false)}, after: 5 * time.Second},
		{name: "transient, budget spent", results: []Result{retrying(0, false)}, last: true, giveUp: true, why: whyRetriesExhausted},
		{name: "throttled: at least a minute", results: []Result{retrying(time.Second, true)}, after: time.Minute, throttled: true},
		{name: "throttled: longer Retry-After kept", results: []Result{retrying(5*time.Minute, true)}, after: 5 * time.Minute, throttled: true},
		{name: "throttled, budget spent: no budget used", results: []Result{retrying(0, true)}, last: true, after: time.Minute, throttled: true},
		{name: "throttled and transient: spends budget", results: []Result{retrying(0, true), retrying(0, false)}},
		{name: "throttled past the TTL", results: []Result{retrying(0, true)}, expires: now.Add(30 * time.Second), giveUp: true, why: whyThrottled},
		{name: "throttled within the TTL", results: []Result{retrying(0, true)}, expires: hour, after: time.Minute, throttled: true},
		{name: "throttled past the longest wait", results: []Result{retrying(0, true)}, sent: now.Add(-DefaultMaxWait), giveUp: true, why: whyThrottled},
	} {
		t.Run(c.name, func(t *testing.T) {
			j := job("a")
			if !c.sent.IsZero() {
				j.Timestamp = c.sent
			}
			if !c.expires.IsZero() {
				j.ExpiresAt = &c.expires
			}
			a := &attempt{job: j, now: now, last: c.last, results: c.results, pending: make([]installations.Installation, len(c.results))}
			giveUp, why := RetryPolicy{}.withDefaults().decide(a)
			if giveUp != c.giveUp || why != c.why || a.retryAfter != c.after || a.throttled != c.throttled {
				t.Errorf("giveUp %v why %q after %v throttled %v; want %v %q %v %v", giveUp, why, a.retryAfter, a.throttled, c.giveUp, c.why, c.after, c.throttled)
			}
		})
	}
}
