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

func (f *fakeRecord) TraceClients(_ context.Context, _, _ string, clients []string) ([]installations.Delivery, error) {
	var out []installations.Delivery
	for _, r := range f.rows {
		if slices.Contains(clients, r.ClientID) {
			out = append(out, r)
		}
	}
	return out, nil
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
			var fresh []string
			for _, d := range a.pending {
				if a.ledger.fresh(d.ID) {
					fresh = append(fresh, d.ID)
				}
			}
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
		{name: "increment: fresh to bump, retried keeps its count", badge: &pushjob.Badge{Increment: true},
			want: map[string]int{"ios-retry": 5}, bump: []string{"ios-fresh", "android"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			reg := &fakeRegistry{}
			// ios-retry was tried before; the others are fresh.
			tried := []installations.Delivery{{InstallationID: "ios-retry", ClientID: "a", Outcome: string(outcome.Retrying)}}
			p, a, _ := newAttempt(t, job("a"), tried, nil, reg)
			a.app = App{Defaults: content.Defaults{Badge: c.badge}}
			a.pending = []installations.Installation{
				dev("ios-fresh", installations.PlatformIOS, 0), dev("ios-retry", installations.PlatformIOS, 5),
				dev("android", installations.PlatformAndroid, 0), dev("web", installations.PlatformWeb, 0),
			}
			if err := p.content(context.Background(), a); err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(a.badges, c.want) || !slices.Equal(a.bump, c.bump) || len(reg.bumped) != 0 {
				t.Errorf("badges %v to bump %v (bumped %v), want %v to bump %v (none bumped yet)", a.badges, a.bump, reg.bumped, c.want, c.bump)
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
		{name: "throttled and transient: spends budget, waits the floor", results: []Result{retrying(0, true), retrying(0, false)}, after: time.Minute},
		{name: "throttled and transient, budget spent", results: []Result{retrying(0, true), retrying(0, false)}, last: true, giveUp: true, why: whyRetriesExhausted},
		{name: "transient asking to wait past the longest wait", results: []Result{retrying(24*time.Hour, false)}, giveUp: true, why: whyRetriesExhausted},
		{name: "transient within the longest wait", results: []Result{retrying(time.Hour, false)}, after: time.Hour},
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

// fakeSender answers every device with answer(token), and records its
// batches.
type fakeSender struct {
	answer  func(token string) Result
	batches [][]string
	short   bool
}

// An answer no Sender may give leaves no device waiting for good: it is
// retried, and the retry policy bounds it.
func TestSendStageOutcomeNoAnswer(t *testing.T) {
	for _, o := range []outcome.Outcome{"", outcome.Muted, outcome.Expired, outcome.Failed} {
		p, a, _ := newAttempt(t, job("c"), nil, nil, nil)
		p.cfg.Senders = map[string]Sender{"x": &fakeSender{answer: func(string) Result { return Result{Outcome: o} }}}
		a.pending = []installations.Installation{{ID: "d", ClientID: "c", Provider: "x", Token: "d"}}
		if err := p.send(context.Background(), a); err != nil {
			t.Fatal(err)
		}
		if r := a.results[0]; r.Outcome != outcome.Retrying || r.Reason == "" {
			t.Errorf("sender answered %q: result %+v, want retrying with the reason", o, r)
		}
	}
}

func (f *fakeSender) Send(_ context.Context, b *Batch) []Result {
	var toks []string
	out := make([]Result, len(b.Devices))
	for i, d := range b.Devices {
		toks = append(toks, d.Token)
		out[i] = f.answer(d.Token)
	}
	f.batches = append(f.batches, toks)
	if f.short {
		return out[:len(out)-1]
	}
	return out
}

func TestSendStage(t *testing.T) {
	ok := func(string) Result { return Result{Outcome: outcome.Delivered} }
	d := func(tok, prov string) installations.Installation {
		return installations.Installation{ID: tok, ClientID: "c", Provider: installations.Provider(prov), Token: tok}
	}
	for _, c := range []struct {
		name    string
		pending []installations.Installation
		short   bool
		want    []outcome.Outcome
		batches map[string][][]string
	}{
		{name: "one batch per provider, in order",
			pending: []installations.Installation{d("a1", "x"), d("b1", "y"), d("a2", "x")},
			want:    []outcome.Outcome{outcome.Delivered, outcome.Delivered, outcome.Delivered},
			batches: map[string][][]string{"x": {{"a1", "a2"}}, "y": {{"b1"}}}},
		{name: "no sender for the provider",
			pending: []installations.Installation{d("a1", "x"), d("z1", "z")},
			want:    []outcome.Outcome{outcome.Delivered, outcome.NoCredentials},
			batches: map[string][][]string{"x": {{"a1"}}}},
		{name: "a sender that lost an answer: retried, not lost", short: true,
			pending: []installations.Installation{d("a1", "x"), d("a2", "x")},
			want:    []outcome.Outcome{outcome.Delivered, outcome.Retrying},
			batches: map[string][][]string{"x": {{"a1", "a2"}}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			senders := map[string]*fakeSender{"x": {answer: ok, short: c.short}, "y": {answer: ok}}
			p, a, _ := newAttempt(t, job("c"), nil, nil, nil)
			p.cfg.Senders = map[string]Sender{"x": senders["x"], "y": senders["y"]}
			a.pending = c.pending
			if err := p.send(context.Background(), a); err != nil {
				t.Fatal(err)
			}
			var got []outcome.Outcome
			for _, r := range a.results {
				got = append(got, r.Outcome)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("results %v, want %v", got, c.want)
			}
			for name, s := range senders {
				if want := c.batches[name]; len(want) != len(s.batches) || (len(want) > 0 && !slices.Equal(want[0], s.batches[0])) {
					t.Errorf("%s got batches %v, want %v", name, s.batches, want)
				}
			}
		})
	}
}

type markingRegistry struct {
	fakeRegistry
	marks map[string][]string // provider/reason -> tokens
}

func (m *markingRegistry) MarkInvalid(_ context.Context, _, provider, reason string, tokens []string, _ time.Time) (int64, error) {
	m.marks[provider+"/"+reason] = append(m.marks[provider+"/"+reason], tokens...)
	return int64(len(tokens)), nil
}

func TestRecordStage(t *testing.T) {
	d := func(tok, prov string) installations.Installation {
		return installations.Installation{ID: tok, ClientID: "c-" + tok, Provider: installations.Provider(prov), Token: tok}
	}
	for _, c := range []struct {
		name    string
		results []Result
		last    bool
		want    map[string]string
		marks   map[string][]string
	}{
		{name: "answers recorded, dead tokens marked per provider and reason",
			results: []Result{{Outcome: outcome.Delivered}, {Outcome: outcome.InvalidToken, Reason: "Unregistered"}, {Outcome: outcome.InvalidToken, Reason: "Unregistered"}, {Outcome: outcome.InvalidToken, Reason: "UNREGISTERED"}},
			want:    map[string]string{"c-t0/t0": "delivered", "c-t1/t1": "invalid_token", "c-t2/t2": "invalid_token", "c-t3/t3": "invalid_token"},
			marks:   map[string][]string{"x/Unregistered": {"t1", "t2"}, "y/UNREGISTERED": {"t3"}}},
		{name: "transient left retrying",
			results: []Result{{Outcome: outcome.Retrying}, {Outcome: outcome.Rejected}, {Outcome: outcome.Delivered}, {Outcome: outcome.AuthError}},
			want:    map[string]string{"c-t0/t0": "retrying", "c-t1/t1": "rejected", "c-t2/t2": "delivered", "c-t3/t3": "auth_error"},
			marks:   map[string][]string{}},
		{name: "transient on the last attempt: failed",
			results: []Result{{Outcome: outcome.Retrying}, {Outcome: outcome.Delivered}, {Outcome: outcome.Delivered}, {Outcome: outcome.Delivered}},
			last:    true,
			want:    map[string]string{"c-t0/t0": "failed", "c-t1/t1": "delivered", "c-t2/t2": "delivered", "c-t3/t3": "delivered"},
			marks:   map[string][]string{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			reg := &markingRegistry{marks: make(map[string][]string)}
			fr := &fakeRecord{}
			p, err := New(Config{Mutes: fakeMutes{}, Registry: reg, Deliveries: fr, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			a, err := p.begin(context.Background(), job("c"), App{}, c.last)
			if err != nil {
				t.Fatal(err)
			}
			a.pending = []installations.Installation{d("t0", "x"), d("t1", "x"), d("t2", "x"), d("t3", "y")}
			a.results = c.results
			if err := p.record(context.Background(), a); err != nil {
				t.Fatal(err)
			}
			if got := recorded(fr); !maps.Equal(got, c.want) {
				t.Errorf("recorded %v, want %v", got, c.want)
			}
			if !maps.EqualFunc(reg.marks, c.marks, slices.Equal) {
				t.Errorf("marked %v, want %v", reg.marks, c.marks)
			}
			if len(fr.recorded) != len(a.pending) {
				t.Errorf("%d rows written for %d devices: want one batch, one row each", len(fr.recorded), len(a.pending))
			}
		})
	}
}

func TestClaimStage(t *testing.T) {
	reg := &fakeRegistry{}
	p, a, fr := newAttempt(t, job("a", "b"), []installations.Delivery{dev("a1", "a")}, nil, reg)
	a.ledger.settleRecipient("b", outcome.NoDevice, whyNeverRegistered, whyNeverRegistered)
	a.pending = []installations.Installation{{ID: "a1", ClientID: "a"}, {ID: "a2", ClientID: "a"}, {ID: "a3", ClientID: "a"}}
	a.badges = map[string]int{"a1": 5}
	a.bump = []string{"a2"}
	if err := p.claim(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	// One batch, before the badge moves: the recipient settled so far and
	// the device whose badge counts the message.
	want := map[string]string{"b": "no_device", "a/a2": "retrying"}
	if got := recorded(fr); !maps.Equal(got, want) || len(fr.recorded) != 2 {
		t.Errorf("claimed %v (%d rows), want %v in one batch", got, len(fr.recorded), want)
	}
	for _, r := range fr.recorded {
		if r.InstallationID != "" && r.Reason != reasonSending {
			t.Errorf("claim %+v, want reason %q", r, reasonSending)
		}
	}
	if !slices.Equal(reg.bumped, []string{"a2"}) || !maps.Equal(a.badges, map[string]int{"a1": 5, "a2": 42}) {
		t.Errorf("bumped %v, badges %v; want a2 bumped to 42 beside a1's 5", reg.bumped, a.badges)
	}

	// No badge to bump: nothing to claim, nothing written yet.
	p, a, fr = newAttempt(t, job("a", "b"), nil, nil, nil)
	a.ledger.settleRecipient("b", outcome.Muted, "", "")
	a.pending = []installations.Installation{{ID: "a1", ClientID: "a"}}
	if err := p.claim(context.Background(), a); err != nil || len(fr.recorded) != 0 {
		t.Errorf("claim without a badge to bump: err %v, wrote %v", err, fr.recorded)
	}
}
