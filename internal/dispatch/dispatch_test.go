package dispatch_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"firebase.google.com/go/v4/messaging"

	"github.com/pushd/pushd/internal/apns"
	"github.com/pushd/pushd/internal/content"
	"github.com/pushd/pushd/internal/dispatch"
	"github.com/pushd/pushd/internal/fcm"
	"github.com/pushd/pushd/internal/installations"
	"github.com/pushd/pushd/internal/mute"
	"github.com/pushd/pushd/internal/outcome"
	"github.com/pushd/pushd/internal/storage/storagetest"
	"github.com/pushd/pushd/pushjob"
)

// The pipeline runs over real registry, mute and delivery stores on SQLite,
// so that the tests check what an operator would read back (valid flags,
// badges, the message's trace); only the providers are fakes.

// t0 is the pipeline's clock in these tests.
var t0 = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

// apnsAnswer and fcmAnswer script a provider: what it says to a token on
// its n-th push (n counts from 0). A nil answer, or none for the token,
// means accepted.
type (
	apnsAnswer func(r apns.Request, n int) apns.Result
	fcmAnswer  func(m *messaging.Message, n int) fcm.Result
)

// fakeAPNs records every push it is asked to send.
type fakeAPNs struct {
	mu     sync.Mutex
	sent   []apns.Request
	apps   []string
	answer apnsAnswer
	// topic is the app's default topic.
	topic string
	// gate, when set, runs inside Send, for tests of concurrency and of
	// a context that ends mid-send.
	gate func(ctx context.Context)
}

func (f *fakeAPNs) Send(ctx context.Context, appID string, r apns.Request) apns.Result {
	f.mu.Lock()
	n := 0
	for _, s := range f.sent {
		if s.Token == r.Token {
			n++
		}
	}
	f.sent = append(f.sent, r)
	f.apps = append(f.apps, appID)
	answer, gate := f.answer, f.gate
	f.mu.Unlock()
	if gate != nil {
		gate(ctx)
	}
	env := r.Env
	if env == "" {
		env = installations.Production
	}
	if answer != nil {
		res := answer(r, n)
		if res.Outcome != "" {
			if res.Env == "" {
				res.Env = env
			}
			return res
		}
	}
	return apns.Result{Outcome: outcome.Delivered, Env: env, Status: 200, ApnsID: "apns-" + r.Token[:8]}
}

// Topic is the app's default topic (apns.Pusher).
func (f *fakeAPNs) Topic(string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.topic
}

// to returns the pushes sent to token.
func (f *fakeAPNs) to(token string) []apns.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []apns.Request
	for _, r := range f.sent {
		if r.Token == token {
			out = append(out, r)
		}
	}
	return out
}

func (f *fakeAPNs) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sent)
}

type fakeFCM struct {
	mu     sync.Mutex
	sent   []*messaging.Message
	answer fcmAnswer
	gate   func(ctx context.Context)
}

func (f *fakeFCM) Send(ctx context.Context, appID string, m *messaging.Message) fcm.Result {
	f.mu.Lock()
	n := 0
	for _, s := range f.sent {
		if s.Token == m.Token {
			n++
		}
	}
	f.sent = append(f.sent, m)
	answer, gate := f.answer, f.gate
	f.mu.Unlock()
	if gate != nil {
		gate(ctx)
	}
	if answer != nil {
		if res := answer(m, n); res.Outcome != "" {
			return res
		}
	}
	return fcm.Result{Outcome: outcome.Delivered, MessageName: "projects/p/messages/" + m.Token}
}

func (f *fakeFCM) Project(string) (string, bool) { return "p", true }

func (f *fakeFCM) to(token string) []*messaging.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*messaging.Message
	for _, m := range f.sent {
		if m.Token == token {
			out = append(out, m)
		}
	}
	return out
}

func (f *fakeFCM) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sent)
}

// observer counts outcomes as the metrics would.
type observer struct {
	mu sync.Mutex
	n  map[outcome.Outcome]int
	// attempts counts pushes by "provider/outcome".
	attempts map[string]int
}

func (o *observer) Attempt(_, provider string, oc outcome.Outcome, _ string, n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.attempts == nil {
		o.attempts = make(map[string]int)
	}
	o.attempts[provider+"/"+string(oc)] += n
}

func (o *observer) Observe(app string, oc outcome.Outcome, _ string, n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.n == nil {
		o.n = make(map[outcome.Outcome]int)
	}
	o.n[oc] += n
}

func (o *observer) get(oc outcome.Outcome) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[oc]
}

// world is one pipeline over fresh stores.
type world struct {
	t     *testing.T
	reg   *installations.Store
	mutes *mute.Store
	del   *installations.Deliveries
	apns  *fakeAPNs
	fcm   *fakeFCM
	obs   *observer
	p     *dispatch.Pipeline
	// cfg is the pipeline's config; parallel and envRegistry configure
	// the providers' Senders.
	cfg         dispatch.Config
	parallel    int
	envRegistry apns.EnvCorrector
	noAPNs      bool
}

// option adjusts a world before its pipeline is built.
type option func(*world)

// withConfig changes the pipeline's config.
func withConfig(f func(*dispatch.Config)) option { return func(w *world) { f(&w.cfg) } }

// withParallel bounds each Sender's pushes in flight.
func withParallel(n int) option { return func(w *world) { w.parallel = n } }

// withClock sets the pipeline's clock.
func withClock(now func() time.Time) option { return func(w *world) { w.cfg.Now = now } }

// withoutAPNs leaves APNs without a Sender.
func withoutAPNs() option { return func(w *world) { w.noAPNs = true } }

// newWorld builds a pipeline for the app "default".
func newWorld(t *testing.T, opts ...option) *world {
	t.Helper()
	db := storagetest.SQLite(t)
	w := &world{
		t:     t,
		reg:   installations.NewStore(db),
		mutes: mute.NewStore(db),
		del:   installations.NewDeliveries(db),
		apns:  &fakeAPNs{},
		fcm:   &fakeFCM{},
		obs:   &observer{},
	}
	w.envRegistry = w.reg
	w.cfg = dispatch.Config{
		Apps: map[string]dispatch.App{"default": {Defaults: content.Defaults{
			Title: "${fromClientId}",
			Body:  "New message in ${convId}",
		}}},
		Mutes:      w.mutes,
		Registry:   w.reg,
		Deliveries: w.del,
		Observer:   w.obs,
		Now:        func() time.Time { return t0 },
	}
	for _, o := range opts {
		o(w)
	}
	w.build()
	return w
}

// build (re)builds the pipeline from w.cfg, with the fake providers'
// Senders.
func (w *world) build() {
	w.t.Helper()
	cfg := w.cfg
	cfg.Senders = map[string]dispatch.Sender{
		"apns": apns.NewBatchSender(w.apns, apns.BatchConfig{Registry: w.envRegistry, Fanout: dispatch.NewFanout(w.parallel, 0)}),
		"fcm":  fcm.NewBatchSender(w.fcm, dispatch.NewFanout(w.parallel, 0)),
	}
	if w.noAPNs {
		delete(cfg.Senders, "apns")
	}
	p, err := dispatch.New(cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	w.p = p
}

// apnsToken is a well-formed APNs token, distinct for each n.
func apnsToken(n int) string { return fmt.Sprintf("%064x", n) }

func fcmToken(name string) string { return "fcm-token:" + name }

// iphone registers an APNs device for client in env ("" for unknown).
func (w *world) iphone(id, client, env string, n int) string {
	w.t.Helper()
	tok := apnsToken(n)
	w.register(installations.Installation{ID: id, AppID: "default", ClientID: client, Provider: installations.APNs, Token: tok, APNsEnv: env})
	return tok
}

func (w *world) android(id, client string) string {
	w.t.Helper()
	tok := fcmToken(id)
	w.register(installations.Installation{ID: id, AppID: "default", ClientID: client, Provider: installations.FCM, Token: tok})
	return tok
}

func (w *world) register(in installations.Installation) {
	w.t.Helper()
	if _, err := w.reg.Upsert(context.Background(), in); err != nil {
		w.t.Fatalf("register %s: %v", in.ID, err)
	}
}

func (w *world) mute(client, conv string, allowMentions bool) {
	w.t.Helper()
	m := mute.Mute{AppID: "default", ClientID: client, ConversationID: conv, AllowMentions: allowMentions}
	if err := w.mutes.Set(context.Background(), m, t0); err != nil {
		w.t.Fatalf("mute %s: %v", client, err)
	}
}

// installation reads one of client's installations back from the
// registry.
func (w *world) installation(client, id string) installations.Installation {
	w.t.Helper()
	list, err := w.reg.ListByClient(context.Background(), "default", client)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, in := range list {
		if in.ID == id {
			return in
		}
	}
	w.t.Fatalf("installation %s of %s not found in %+v", id, client, list)
	return installations.Installation{}
}

// trace is the message's record as GET /v1/messages/{id} shows it: outcome
// by "client" or "client/installation".
func (w *world) trace(messageID string) map[string]string {
	w.t.Helper()
	rows, err := w.del.Trace(context.Background(), "default", messageID)
	if err != nil {
		w.t.Fatal(err)
	}
	out := make(map[string]string)
	for _, r := range rows {
		k := r.ClientID
		if r.InstallationID != "" {
			k += "/" + r.InstallationID
		}
		out[k] = r.Outcome
	}
	return out
}

// process runs one attempt of job; retry says it is not the first, for
// the reader: the pipeline learns that from the record.
func (w *world) process(job pushjob.Job, first bool) *dispatch.Report {
	w.t.Helper()
	rep, err := w.p.Process(context.Background(), job, false)
	if err != nil {
		w.t.Fatalf("Process: %v", err)
	}
	return rep
}

func newJob(id string, recipients ...string) pushjob.Job {
	j := pushjob.Job{
		MessageID: id, ConversationID: "conv-1", FromClientID: "zoe",
		Recipients: recipients, Timestamp: t0,
	}
	j.Normalize()
	return j
}

// outcomes flattens a report: outcome by "client" (nobody's device was
// tried) or "client/installation".
func outcomes(rep *dispatch.Report) map[string]string {
	out := make(map[string]string)
	for _, r := range rep.Recipients {
		if r.Outcome != "" {
			out[r.ClientID] = string(r.Outcome)
		}
		for _, d := range r.Devices {
			out[r.ClientID+"/"+d.InstallationID] = string(d.Outcome)
		}
	}
	return out
}

func device(t *testing.T, rep *dispatch.Report, client, id string) dispatch.DeviceResult {
	t.Helper()
	for _, r := range rep.Recipients {
		if r.ClientID != client {
			continue
		}
		for _, d := range r.Devices {
			if d.InstallationID == id {
				return d
			}
		}
	}
	t.Fatalf("no result for %s/%s in %v", client, id, outcomes(rep))
	return dispatch.DeviceResult{}
}

func sameMap(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s[%s] = %q, want %q", what, k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s has unexpected %s = %q", what, k, v)
		}
	}
}

// apsAlert decodes the parts of an APNs payload the tests look at.
type apsPayload struct {
	APS struct {
		Alert struct {
			Title string `json:"title"`
			Body  string `json:"body"`
		} `json:"alert"`
		Badge    *int   `json:"badge"`
		ThreadID string `json:"thread-id"`
	} `json:"aps"`
}

func decodeAPS(t *testing.T, payload []byte) apsPayload {
	t.Helper()
	var p apsPayload
	if err := json.Unmarshal(payload, &p); err != nil {
		t.Fatalf("APNs payload %s: %v", payload, err)
	}
	return p
}

// One job for every kind of recipient: the mute filter, the lookup, the
// routing and the record each do their part.
func TestProcessRoutesEveryRecipient(t *testing.T) {
	w := newWorld(t)
	alice := w.iphone("iphone-alice", "alice", installations.Production, 1)
	bob := w.iphone("iphone-bob", "bob", installations.Development, 2)
	carol := w.android("android-carol", "carol")
	dave := w.iphone("iphone-dave", "dave", installations.Production, 3)
	erin := w.android("android-erin", "erin")
	frank := w.android("android-frank", "frank")
	w.mute("dave", "conv-1", false)
	w.mute("erin", "conv-1", true)  // mentioned below: gets through
	w.mute("frank", "conv-1", true) // not mentioned: stays muted
	w.mute("alice", "other-conv", false)
	// gina has no device.

	job := newJob("msg-1", "alice", "bob", "carol", "dave", "erin", "frank", "gina")
	job.Mentions = []string{"erin"}
	rep := w.process(job, true)

	want := map[string]string{
		"alice/iphone-alice":  "delivered",
		"bob/iphone-bob":      "delivered",
		"carol/android-carol": "delivered",
		"erin/android-erin":   "delivered",
		"dave":                "muted",
		"frank":               "muted",
		"gina":                "no_device",
	}
	sameMap(t, "report", outcomes(rep), want)
	sameMap(t, "trace", w.trace("msg-1"), want)
	if n := rep.Pending(); n != 0 {
		t.Errorf("Pending() = %d, want 0", n)
	}

	// APNs pushes go to the gateway of the device's environment.
	for tok, env := range map[string]string{alice: installations.Production, bob: installations.Development} {
		got := w.apns.to(tok)
		if len(got) != 1 {
			t.Fatalf("%d pushes to %s…, want 1", len(got), tok[:8])
		}
		if got[0].Env != env {
			t.Errorf("push to %s… went to %q, want %q", tok[:8], got[0].Env, env)
		}
		if got[0].CollapseID != "msg-1" {
			t.Errorf("collapse id %q, want the message id", got[0].CollapseID)
		}
		p := decodeAPS(t, got[0].Payload)
		if p.APS.Alert.Title != "zoe" || p.APS.Alert.Body != "New message in conv-1" || p.APS.ThreadID != "conv-1" {
			t.Errorf("APNs payload %s: want the app's template filled in", got[0].Payload)
		}
	}
	if d := device(t, rep, "bob", "iphone-bob"); d.Route != installations.Development || d.Provider != "apns" {
		t.Errorf("bob's result %+v, want apns development", d)
	}
	for _, tok := range []string{carol, erin} {
		got := w.fcm.to(tok)
		if len(got) != 1 {
			t.Fatalf("%d FCM messages to %s, want 1", len(got), tok)
		}
		if got[0].Notification == nil || got[0].Notification.Title != "zoe" || got[0].Notification.Body != "New message in conv-1" {
			t.Errorf("FCM notification %+v: want the app's template filled in", got[0].Notification)
		}
	}
	if n := len(w.apns.to(dave)) + len(w.fcm.to(frank)); n != 0 {
		t.Errorf("muted recipients got %d pushes", n)
	}
	if w.apns.count() != 2 || w.fcm.count() != 2 {
		t.Errorf("sent %d APNs and %d FCM pushes, want 2 and 2", w.apns.count(), w.fcm.count())
	}
	for o, n := range map[outcome.Outcome]int{outcome.Delivered: 4, outcome.Muted: 2, outcome.NoDevice: 1} {
		if got := w.obs.get(o); got != n {
			t.Errorf("observed %d %s, want %d", got, o, n)
		}
	}
}

func TestProcessMentionAllPassesMutesThatAllowMentions(t *testing.T) {
	w := newWorld(t)
	w.android("android-erin", "erin")
	w.android("android-dave", "dave")
	w.mute("erin", "conv-1", true)
	w.mute("dave", "conv-1", false)
	job := newJob("msg-1", "erin", "dave")
	job.MentionAll = true
	sameMap(t, "report", outcomes(w.process(job, true)), map[string]string{
		"erin/android-erin": "delivered",
		"dave":              "muted",
	})
}

func TestProcessForcePushesToMutedRecipients(t *testing.T) {
	w := newWorld(t)
	dave := w.iphone("iphone-dave", "dave", installations.Production, 3)
	w.mute("dave", "conv-1", false)
	job := newJob("msg-1", "dave")
	job.Force = true
	sameMap(t, "report", outcomes(w.process(job, true)), map[string]string{"dave/iphone-dave": "delivered"})
	if n := len(w.apns.to(dave)); n != 1 {
		t.Errorf("forced push sent %d times to a muted device, want 1", n)
	}
}

func TestProcessMuteOfAnotherAppDoesNotApply(t *testing.T) {
	w := newWorld(t)
	w.android("android-dave", "dave")
	m := mute.Mute{AppID: "other", ClientID: "dave", ConversationID: "conv-1"}
	if err := w.mutes.Set(context.Background(), m, t0); err != nil {
		t.Fatal(err)
	}
	sameMap(t, "report", outcomes(w.process(newJob("msg-1", "dave"), true)), map[string]string{"dave/android-dave": "delivered"})
}

func TestProcessExpiredJobSendsNothing(t *testing.T) {
	past := t0.Add(-time.Second)
	for name, set := range map[string]func(*pushjob.Job){
		"expires_at": func(j *pushjob.Job) { j.ExpiresAt = &past },
		"ttl":        func(j *pushjob.Job) { j.Timestamp = t0.Add(-2 * time.Hour); j.TTLSeconds = 3600 },
		"now":        func(j *pushjob.Job) { at := t0; j.ExpiresAt = &at },
	} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t)
			w.iphone("iphone-alice", "alice", installations.Production, 1)
			w.android("android-carol", "carol")
			w.mute("dave", "conv-1", false)
			job := newJob("msg-1", "alice", "carol", "dave", "gina")
			set(&job)
			rep := w.process(job, true)
			want := map[string]string{"alice": "expired", "carol": "expired", "dave": "expired", "gina": "expired"}
			sameMap(t, "report", outcomes(rep), want)
			sameMap(t, "trace", w.trace("msg-1"), want)
			if n := w.apns.count() + w.fcm.count(); n != 0 {
				t.Errorf("an expired job sent %d pushes", n)
			}
			if got := w.obs.get(outcome.Expired); got != 4 {
				t.Errorf("observed %d expired, want 4", got)
			}
		})
	}
}

func TestProcessPassesExpiryToProviders(t *testing.T) {
	w := newWorld(t)
	alice := w.iphone("iphone-alice", "alice", installations.Production, 1)
	carol := w.android("android-carol", "carol")
	job := newJob("msg-1", "alice", "carol")
	job.TTLSeconds = 3600
	w.process(job, true)
	if got := w.apns.to(alice); len(got) != 1 || !got[0].Expiration.Equal(t0.Add(time.Hour)) {
		t.Errorf("APNs expiration: %+v, want %v", got, t0.Add(time.Hour))
	}
	if got := w.fcm.to(carol); len(got) != 1 || got[0].Android == nil || got[0].Android.TTL == nil || *got[0].Android.TTL != time.Hour {
		t.Errorf("FCM message %+v: want a TTL of an hour", got)
	}
}

func TestProcessNoDeviceAndInvalidDevice(t *testing.T) {
	w := newWorld(t)
	tok := w.iphone("iphone-hank", "hank", installations.Production, 4)
	if _, err := w.reg.MarkInvalid(context.Background(), "default", "apns", "Unregistered", []string{tok}, t0); err != nil {
		t.Fatal(err)
	}
	sameMap(t, "report", outcomes(w.process(newJob("msg-1", "hank", "gina"), true)), map[string]string{
		"hank": "no_device", "gina": "no_device",
	})
	if n := w.apns.count(); n != 0 {
		t.Errorf("sent %d pushes to an invalid token", n)
	}
}

// A token the provider calls dead is marked invalid with the provider's
// reason, and the next message finds the client without a device.
func TestProcessMarksDeadTokens(t *testing.T) {
	w := newWorld(t)
	hank := w.iphone("iphone-hank", "hank", installations.Production, 4)
	ivan := w.android("android-ivan", "ivan")
	w.iphone("iphone-alice", "alice", installations.Production, 1)
	w.apns.answer = func(r apns.Request, n int) apns.Result {
		if r.Token == hank {
			return apns.Result{Outcome: outcome.InvalidToken, Status: 410, Reason: "Unregistered"}
		}
		return apns.Result{}
	}
	w.fcm.answer = func(m *messaging.Message, n int) fcm.Result {
		if m.Token == ivan {
			return fcm.Result{Outcome: outcome.InvalidToken, Code: "UNREGISTERED"}
		}
		return fcm.Result{}
	}
	rep := w.process(newJob("msg-1", "hank", "ivan", "alice"), true)
	sameMap(t, "report", outcomes(rep), map[string]string{
		"hank/iphone-hank":   "invalid_token",
		"ivan/android-ivan":  "invalid_token",
		"alice/iphone-alice": "delivered",
	})
	if d := device(t, rep, "hank", "iphone-hank"); d.Reason != "Unregistered" {
		t.Errorf("hank's reason %q, want Unregistered", d.Reason)
	}
	for client, c := range map[string]struct{ id, reason string }{
		"hank": {"iphone-hank", "Unregistered"},
		"ivan": {"android-ivan", "UNREGISTERED"},
	} {
		in := w.installation(client, c.id)
		if in.Valid || in.InvalidReason != c.reason || !in.InvalidAt.Equal(t0) {
			t.Errorf("%s after a dead-token answer: valid=%v reason=%q at=%v, want invalid for %s at %v",
				c.id, in.Valid, in.InvalidReason, in.InvalidAt, c.reason, t0)
		}
	}
	if in := w.installation("alice", "iphone-alice"); !in.Valid {
		t.Error("a delivered device was marked invalid")
	}

	sameMap(t, "next message", outcomes(w.process(newJob("msg-2", "hank", "ivan"), true)), map[string]string{
		"hank": "no_device", "ivan": "no_device",
	})
	if n := len(w.apns.to(hank)) + len(w.fcm.to(ivan)); n != 2 {
		t.Errorf("dead tokens were pushed %d times in all, want once each", n)
	}
}

// Refused content and refused credentials are not the token's fault.
func TestProcessRejectedAndAuthErrorKeepTokens(t *testing.T) {
	w := newWorld(t)
	alice := w.iphone("iphone-alice", "alice", installations.Production, 1)
	w.android("android-carol", "carol")
	bob := w.iphone("iphone-bob", "bob", installations.Production, 2)
	w.apns.answer = func(r apns.Request, n int) apns.Result {
		switch r.Token {
		case alice:
			return apns.Result{Outcome: outcome.AuthError, Status: 403, Reason: "InvalidProviderToken"}
		case bob:
			return apns.Result{Outcome: outcome.Rejected, Status: 400, Reason: "PayloadTooLarge"}
		}
		return apns.Result{}
	}
	w.fcm.answer = func(m *messaging.Message, n int) fcm.Result {
		return fcm.Result{Outcome: outcome.AuthError, Code: "THIRD_PARTY_AUTH_ERROR"}
	}
	rep := w.process(newJob("msg-1", "alice", "bob", "carol"), true)
	want := map[string]string{
		"alice/iphone-alice":  "auth_error",
		"bob/iphone-bob":      "rejected",
		"carol/android-carol": "auth_error",
	}
	sameMap(t, "report", outcomes(rep), want)
	sameMap(t, "trace", w.trace("msg-1"), want)
	if d := device(t, rep, "alice", "iphone-alice"); d.Reason != "InvalidProviderToken" {
		t.Errorf("alice's reason %q, want InvalidProviderToken", d.Reason)
	}
	if n := rep.Pending(); n != 0 {
		t.Errorf("Pending() = %d: rejected and auth_error are not retried", n)
	}
	for client, id := range map[string]string{"alice": "iphone-alice", "bob": "iphone-bob", "carol": "android-carol"} {
		if in := w.installation(client, id); !in.Valid || in.InvalidReason != "" {
			t.Errorf("%s was blamed: valid=%v reason=%q", id, in.Valid, in.InvalidReason)
		}
	}
}

func TestProcessWithoutCredentials(t *testing.T) {
	w := newWorld(t, withoutAPNs())
	w.iphone("iphone-alice", "alice", installations.Production, 1)
	w.android("android-carol", "carol")
	sameMap(t, "report", outcomes(w.process(newJob("msg-1", "alice", "carol"), true)), map[string]string{
		"alice/iphone-alice":  "no_credentials",
		"carol/android-carol": "delivered",
	})
}

// A retry sends only to the devices that have not accepted the message.
func TestProcessRetrySendsOnlyToPendingDevices(t *testing.T) {
	w := newWorld(t)
	alice := w.iphone("iphone-alice", "alice", installations.Production, 1)
	bob := w.iphone("iphone-bob", "bob", installations.Development, 2)
	carol := w.android("android-carol", "carol")
	dan := w.android("android-dan", "dan")
	// bob and carol fail on the first attempt; dan's token is dead.
	w.apns.answer = func(r apns.Request, n int) apns.Result {
		if r.Token == bob && n == 0 {
			return apns.Result{Outcome: outcome.Retrying, Status: 503, Reason: "ServiceUnavailable", RetryAfter: 2 * time.Second}
		}
		return apns.Result{}
	}
	w.fcm.answer = func(m *messaging.Message, n int) fcm.Result {
		switch {
		case m.Token == carol && n == 0:
			return fcm.Result{Outcome: outcome.Retrying, Code: "UNAVAILABLE", RetryAfter: 5 * time.Second}
		case m.Token == dan:
			return fcm.Result{Outcome: outcome.InvalidToken, Code: "UNREGISTERED"}
		}
		return fcm.Result{}
	}
	job := newJob("msg-1", "alice", "bob", "carol", "dan")

	rep := w.process(job, true)
	sameMap(t, "first attempt", outcomes(rep), map[string]string{
		"alice/iphone-alice":  "delivered",
		"bob/iphone-bob":      "retrying",
		"carol/android-carol": "retrying",
		"dan/android-dan":     "invalid_token",
	})
	if n := rep.Pending(); n != 2 {
		t.Errorf("Pending() = %d, want 2", n)
	}
	if rep.RetryAfter != 5*time.Second {
		t.Errorf("RetryAfter = %v, want the longest asked for, 5s", rep.RetryAfter)
	}

	rep = w.process(job, false)
	got := outcomes(rep)
	sameMap(t, "second attempt", got, map[string]string{
		"alice/iphone-alice":  "delivered",
		"bob/iphone-bob":      "delivered",
		"carol/android-carol": "delivered",
		// Settled on the first attempt: not a recipient without a device
		// (issue 11, defect 4).
		"dan/android-dan": "invalid_token",
	})
	if n := rep.Pending(); n != 0 {
		t.Errorf("Pending() after the retry = %d, want 0", n)
	}
	if d := device(t, rep, "alice", "iphone-alice"); d.Reason != "earlier attempt" {
		t.Errorf("alice on the retry: %+v, want delivered on an earlier attempt", d)
	}
	for tok, want := range map[string]int{alice: 1, bob: 2} {
		if n := len(w.apns.to(tok)); n != want {
			t.Errorf("%d pushes to %s…, want %d", n, tok[:8], want)
		}
	}
	if n := len(w.fcm.to(carol)); n != 2 {
		t.Errorf("%d FCM messages to carol, want 2", n)
	}
	if n := len(w.fcm.to(dan)); n != 1 {
		t.Errorf("%d FCM messages to dan's dead token, want 1", n)
	}
	// The retry kept bob's environment.
	if got := w.apns.to(bob); got[1].Env != installations.Development {
		t.Errorf("retry to bob went to %q", got[1].Env)
	}
	sameMap(t, "trace", w.trace("msg-1"), map[string]string{
		"alice/iphone-alice":  "delivered",
		"bob/iphone-bob":      "delivered",
		"carol/android-carol": "delivered",
		"dan/android-dan":     "invalid_token",
	})

	// A third run (a duplicate task after a crash) sends nothing at all.
	before := w.apns.count() + w.fcm.count()
	w.process(job, false)
	if n := w.apns.count() + w.fcm.count(); n != before {
		t.Errorf("a third attempt sent %d more pushes, want none", n-before)
	}
}

// "Increment" bumps the stored badge once per message: a retry sends the
// number the first attempt stored.
func TestProcessBadgeIncrementsOnce(t *testing.T) {
	w := newWorld(t)
	alice := w.iphone("iphone-alice", "alice", installations.Production, 1)
	bob := w.iphone("iphone-bob", "bob", installations.Production, 2)
	carol := w.android("android-carol", "carol")
	w.apns.answer = func(r apns.Request, n int) apns.Result {
		if r.Token == bob && n == 0 {
			return apns.Result{Outcome: outcome.Retrying, Status: 503, Reason: "ServiceUnavailable"}
		}
		return apns.Result{}
	}
	ctx := context.Background()
	// bob already has two unread pushes.
	for range 2 {
		if _, err := w.reg.IncrementBadges(ctx, "default", []string{"iphone-bob"}); err != nil {
			t.Fatal(err)
		}
	}
	job := newJob("msg-1", "alice", "bob", "carol")
	job.Push = &pushjob.Content{Badge: &pushjob.Badge{Increment: true}}

	w.process(job, true)
	if in := w.installation("alice", "iphone-alice"); in.Badge != 1 {
		t.Errorf("alice's stored badge %d, want 1", in.Badge)
	}
	if in := w.installation("bob", "iphone-bob"); in.Badge != 3 {
		t.Errorf("bob's stored badge %d, want 3", in.Badge)
	}
	if in := w.installation("carol", "android-carol"); in.Badge != 1 {
		t.Errorf("carol's stored badge %d, want 1", in.Badge)
	}
	if p := decodeAPS(t, w.apns.to(alice)[0].Payload); p.APS.Badge == nil || *p.APS.Badge != 1 {
		t.Errorf("alice's payload %s, want badge 1", w.apns.to(alice)[0].Payload)
	}
	if m := w.fcm.to(carol)[0]; m.Android == nil || m.Android.Notification == nil ||
		m.Android.Notification.NotificationCount == nil || *m.Android.Notification.NotificationCount != 1 {
		t.Errorf("carol's message does not carry notification count 1: %+v", m.Android)
	}

	w.process(job, false)
	if in := w.installation("bob", "iphone-bob"); in.Badge != 3 {
		t.Errorf("bob's stored badge after the retry %d, want still 3", in.Badge)
	}
	if in := w.installation("alice", "iphone-alice"); in.Badge != 1 {
		t.Errorf("alice's stored badge after the retry %d, want still 1", in.Badge)
	}
	sent := w.apns.to(bob)
	if len(sent) != 2 {
		t.Fatalf("%d pushes to bob, want 2", len(sent))
	}
	for i, r := range sent {
		if p := decodeAPS(t, r.Payload); p.APS.Badge == nil || *p.APS.Badge != 3 {
			t.Errorf("bob's push %d: payload %s, want badge 3", i, r.Payload)
		}
	}
}

// asynq does not count a throttled retry, so the worker cannot tell it from
// a first run; the badge must still count the message once.
func TestProcessBadgeThrottledRetry(t *testing.T) {
	w := newWorld(t)
	bob := w.iphone("iphone-bob", "bob", installations.Production, 2)
	w.apns.answer = func(r apns.Request, n int) apns.Result {
		if n < 3 {
			return apns.Result{Outcome: outcome.Retrying, Status: 429, Reason: "TooManyRequests"}
		}
		return apns.Result{}
	}
	job := newJob("msg-1", "bob")
	job.Push = &pushjob.Content{Badge: &pushjob.Badge{Increment: true}}
	for range 4 {
		w.process(job, true) // as the worker sees a throttled retry
	}
	if in := w.installation("bob", "iphone-bob"); in.Badge != 1 {
		t.Errorf("bob's stored badge %d after three throttled retries, want 1", in.Badge)
	}
	sent := w.apns.to(bob)
	if len(sent) != 4 {
		t.Fatalf("%d pushes to bob, want 4", len(sent))
	}
	if p := decodeAPS(t, sent[3].Payload); p.APS.Badge == nil || *p.APS.Badge != 1 {
		t.Errorf("the delivered push carries %s, want badge 1", sent[3].Payload)
	}
	if tr := w.trace("msg-1"); tr["bob/iphone-bob"] != "delivered" {
		t.Errorf("trace %v", tr)
	}
}

// A device that was refused for good is not pushed again by a retry.
func TestProcessRetrySkipsSettledDevices(t *testing.T) {
	w := newWorld(t)
	alice := w.iphone("iphone-alice", "alice", installations.Production, 1)
	bob := w.iphone("iphone-bob", "bob", installations.Production, 2)
	w.apns.answer = func(r apns.Request, n int) apns.Result {
		switch {
		case r.Token == alice:
			return apns.Result{Outcome: outcome.Rejected, Status: 400, Reason: "BadTopic"}
		case r.Token == bob && n == 0:
			return apns.Result{Outcome: outcome.Retrying, Status: 503, Reason: "ServiceUnavailable"}
		}
		return apns.Result{}
	}
	job := newJob("msg-1", "alice", "bob")
	w.process(job, true)
	w.process(job, false)
	if n := len(w.apns.to(alice)); n != 1 {
		t.Errorf("alice (rejected) was pushed %d times, want once", n)
	}
	if n := len(w.apns.to(bob)); n != 2 {
		t.Errorf("bob was pushed %d times, want twice", n)
	}
}

func TestProcessFixedBadge(t *testing.T) {
	w := newWorld(t)
	alice := w.iphone("iphone-alice", "alice", installations.Production, 1)
	job := newJob("msg-1", "alice")
	job.Push = &pushjob.Content{Badge: &pushjob.Badge{Value: 7}}
	w.process(job, true)
	if p := decodeAPS(t, w.apns.to(alice)[0].Payload); p.APS.Badge == nil || *p.APS.Badge != 7 {
		t.Errorf("payload %s, want badge 7", w.apns.to(alice)[0].Payload)
	}
	if in := w.installation("alice", "iphone-alice"); in.Badge != 0 {
		t.Errorf("a fixed badge changed the stored one to %d", in.Badge)
	}
}

// At most Parallel pushes of one job are in flight at once for each
// provider (each Sender bounds its own), and each does use that many.
func TestProcessBoundsParallelSends(t *testing.T) {
	const limit, devices = 3, 20
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a deadlock guard only
	defer cancel()

	// gauge watches one provider's sends. Every send waits until that
	// provider has had limit sends in flight (or has started all of its
	// devices), so reaching the limit does not depend on timing; after
	// that sends run freely and peak keeps watching.
	type gauge struct {
		mu                      sync.Mutex
		inFlight, peak, entered int
		gate                    chan struct{}
		opened                  bool
	}
	newGauge := func(total int) (*gauge, func(context.Context)) {
		g := &gauge{gate: make(chan struct{})}
		return g, func(context.Context) {
			g.mu.Lock()
			g.inFlight++
			g.entered++
			g.peak = max(g.peak, g.inFlight)
			if !g.opened && (g.inFlight >= limit || g.entered == total) {
				g.opened = true
				close(g.gate)
			}
			g.mu.Unlock()
			select {
			case <-g.gate:
			case <-ctx.Done():
			}
			g.mu.Lock()
			g.inFlight--
			g.mu.Unlock()
		}
	}
	w := newWorld(t, withParallel(limit))
	apnsGauge, apnsWait := newGauge(devices / 2)
	fcmGauge, fcmWait := newGauge(devices / 2)
	w.apns.gate, w.fcm.gate = apnsWait, fcmWait
	var recipients []string
	for i := range devices {
		c := fmt.Sprintf("user-%02d", i)
		recipients = append(recipients, c)
		if i%2 == 0 {
			w.iphone("iphone-"+c, c, installations.Production, i+1)
		} else {
			w.android("android-"+c, c)
		}
	}
	rep, err := w.p.Process(ctx, newJob("msg-1", recipients...), false)
	if err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatal("the sends never reached the limit: the deadlock guard fired")
	}
	for k, v := range outcomes(rep) {
		if v != "delivered" {
			t.Errorf("%s: %s, want delivered", k, v)
		}
	}
	if n := w.apns.count() + w.fcm.count(); n != devices {
		t.Errorf("sent %d pushes, want %d", n, devices)
	}
	for name, g := range map[string]*gauge{"apns": apnsGauge, "fcm": fcmGauge} {
		if g.peak != limit {
			t.Errorf("%s: at most %d sends were in flight at once, want exactly the limit %d", name, g.peak, limit)
		}
	}
}

func TestProcessUnknownApp(t *testing.T) {
	w := newWorld(t)
	w.iphone("iphone-alice", "alice", installations.Production, 1)
	job := newJob("msg-1", "alice")
	job.AppID = "nope"
	rep, err := w.p.Process(context.Background(), job, false)
	if !errors.Is(err, dispatch.ErrUnknownApp) {
		t.Fatalf("Process: %v, %v; want ErrUnknownApp", rep, err)
	}
	if !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("error %q does not name the app", err)
	}
	if n := w.apns.count() + w.fcm.count(); n != 0 {
		t.Errorf("sent %d pushes for an unknown app", n)
	}
	rows, err := w.del.Trace(context.Background(), "nope", "msg-1")
	if err != nil || len(rows) != 0 {
		t.Errorf("recorded %v, %v for an unknown app", rows, err)
	}
}

// The pushes that went out are recorded even when the attempt's context
// ends during the sends (asynq's timeout, a shutdown): otherwise the retry
// would push those devices a second time.
func TestProcessRecordsDeliveriesAfterContextEnds(t *testing.T) {
	w := newWorld(t)
	alice := w.iphone("iphone-alice", "alice", installations.Production, 1)
	hank := w.iphone("iphone-hank", "hank", installations.Production, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.apns.gate = func(context.Context) { cancel() }
	w.apns.answer = func(r apns.Request, n int) apns.Result {
		if r.Token == hank {
			return apns.Result{Outcome: outcome.InvalidToken, Status: 410, Reason: "Unregistered"}
		}
		return apns.Result{}
	}
	if _, err := w.p.Process(ctx, newJob("msg-1", "alice", "hank"), true); err != nil {
		t.Fatalf("Process: %v", err)
	}
	sameMap(t, "trace", w.trace("msg-1"), map[string]string{
		"alice/iphone-alice": "delivered",
		"hank/iphone-hank":   "invalid_token",
	})
	if in := w.installation("hank", "iphone-hank"); in.Valid {
		t.Error("the dead token was not marked")
	}
	w.apns.gate = nil
	w.process(newJob("msg-1", "alice", "hank"), false)
	if n := len(w.apns.to(alice)); n != 1 {
		t.Errorf("alice was pushed %d times, want once", n)
	}
}

// failingMarks is a registry whose MarkInvalid fails.
type failingMarks struct{ *installations.Store }

func (failingMarks) MarkInvalid(context.Context, string, string, string, []string, time.Time) (int64, error) {
	return 0, errors.New("database is gone")
}

// A failure to mark a token fails the attempt, yet what was delivered is
// still recorded, and the dead token is tried (and marked) again.
func TestProcessMarkInvalidFailureKeepsOtherRecords(t *testing.T) {
	w := newWorld(t)
	w.cfg.Apps = map[string]dispatch.App{"default": {}}
	w.cfg.Registry = failingMarks{w.reg}
	w.build()
	alice := w.iphone("iphone-alice", "alice", installations.Production, 1)
	hank := w.iphone("iphone-hank", "hank", installations.Production, 4)
	w.apns.answer = func(r apns.Request, n int) apns.Result {
		if r.Token == hank {
			return apns.Result{Outcome: outcome.InvalidToken, Status: 410, Reason: "Unregistered"}
		}
		return apns.Result{}
	}
	job := newJob("msg-1", "alice", "hank")
	if _, err := w.p.Process(context.Background(), job, false); err == nil || !strings.Contains(err.Error(), "database is gone") {
		t.Fatalf("Process: %v, want the registry's error", err)
	}
	// hank stays on record as still to retry.
	sameMap(t, "trace", w.trace("msg-1"), map[string]string{"alice/iphone-alice": "delivered", "hank/iphone-hank": "retrying"})

	// The registry is back: the retry marks hank and leaves alice alone.
	w.cfg.Registry = w.reg
	w.build()
	w.process(job, false)
	if in := w.installation("hank", "iphone-hank"); in.Valid || in.InvalidReason != "Unregistered" {
		t.Errorf("hank after the retry: valid=%v reason=%q", in.Valid, in.InvalidReason)
	}
	if n := len(w.apns.to(alice)); n != 1 {
		t.Errorf("alice was pushed %d times, want once", n)
	}
}

func TestNewRequiresStores(t *testing.T) {
	if _, err := dispatch.New(dispatch.Config{}); err == nil {
		t.Error("New without stores succeeded")
	}
}

// The devices of a report appear in the registry's order, so that logs and
// traces read the same on every run.
func TestProcessReportKeepsRecipientOrder(t *testing.T) {
	w := newWorld(t)
	w.android("android-b", "b")
	w.android("android-a", "a")
	rep := w.process(newJob("msg-1", "c", "b", "a"), true)
	var order []string
	for _, r := range rep.Recipients {
		order = append(order, r.ClientID)
	}
	if !slices.Equal(order, []string{"c", "b", "a"}) {
		t.Errorf("report order %v, want the job's recipients' order", order)
	}
}

// An over-long body is cut on a character boundary to fit Apple's limit;
// content that cannot fit even so is rejected for APNs devices only.
func TestProcessAPNsPayloadSize(t *testing.T) {
	w := newWorld(t)
	alice := w.iphone("iphone-alice", "alice", installations.Production, 1)
	w.android("android-carol", "carol")

	long := newJob("msg-1", "alice", "carol")
	long.Push = &pushjob.Content{Body: strings.Repeat("汉", pushjob.MaxTextLen/3)}
	sameMap(t, "long body", outcomes(w.process(long, true)), map[string]string{
		"alice/iphone-alice": "delivered", "carol/android-carol": "delivered",
	})
	payload := w.apns.to(alice)[0].Payload
	p := decodeAPS(t, payload)
	if len(payload) > apns.MaxPayload || !strings.HasSuffix(p.APS.Alert.Body, "…") ||
		strings.Trim(p.APS.Alert.Body, "汉…") != "" {
		t.Errorf("payload of %d bytes with body ending %q: want at most %d bytes, cut between characters",
			len(payload), p.APS.Alert.Body[max(0, len(p.APS.Alert.Body)-12):], apns.MaxPayload)
	}

	huge := newJob("msg-2", "alice", "carol")
	huge.Push = &pushjob.Content{Title: strings.Repeat("x", pushjob.MaxTextLen), Body: "hi"}
	rep := w.process(huge, true)
	sameMap(t, "huge title", outcomes(rep), map[string]string{
		"alice/iphone-alice": "rejected", "carol/android-carol": "delivered",
	})
	if d := device(t, rep, "alice", "iphone-alice"); !strings.Contains(d.Reason, "APNs payload") {
		t.Errorf("reason %q does not say the payload is too large", d.Reason)
	}
	if n := len(w.apns.to(alice)); n != 1 {
		t.Errorf("%d pushes to alice, want only the first message's", n)
	}
	if in := w.installation("alice", "iphone-alice"); !in.Valid {
		t.Error("content too large blamed the token")
	}
}

// envScript scripts the fake APNs per environment for tok: byEnv maps an
// environment to its gateway's answer; an environment absent from byEnv
// accepts, and so does every gateway for other tokens.
func envScript(tok string, byEnv map[string]apns.Result) apnsAnswer {
	return func(r apns.Request, n int) apns.Result {
		if r.Token != tok {
			return apns.Result{}
		}
		return byEnv[r.Env]
	}
}

var (
	badDeviceToken = apns.Result{Outcome: outcome.InvalidToken, Status: 400, Reason: "BadDeviceToken"}
	noCredentials  = apns.Result{Outcome: outcome.NoCredentials, Err: errors.New("apns: app \"default\" has no credentials for this environment")}
)

// envs lists the environments the pushes to tok went to, in order.
func (f *fakeAPNs) envs(tok string) []string {
	var out []string
	for _, r := range f.to(tok) {
		out = append(out, r.Env)
	}
	return out
}

// A development token registered as production is refused by the
// production gateway, delivered by the development one with the same
// payload, and corrected in the registry: the next message goes straight to
// development.
func TestProcessEnvCorrectsDevelopmentTokenRegisteredAsProduction(t *testing.T) {
	w := newWorld(t)
	tok := w.iphone("iphone-ada", "ada", installations.Production, 1)
	w.apns.answer = envScript(tok, map[string]apns.Result{installations.Production: badDeviceToken})
	job := newJob("msg-1", "ada")
	job.Push = &pushjob.Content{Badge: &pushjob.Badge{Increment: true}}
	rep := w.process(job, true)
	want := map[string]string{"ada/iphone-ada": "env_corrected"}
	sameMap(t, "report", outcomes(rep), want)
	sameMap(t, "trace", w.trace("msg-1"), want)
	if d := device(t, rep, "ada", "iphone-ada"); d.Route != installations.Development {
		t.Errorf("report's apns_env %q, want development", d.Route)
	}
	if got := w.apns.envs(tok); !slices.Equal(got, []string{installations.Production, installations.Development}) {
		t.Errorf("pushes went to %v, want production then development", got)
	}
	sent := w.apns.to(tok)
	if len(sent) == 2 && string(sent[0].Payload) != string(sent[1].Payload) {
		t.Errorf("second try's payload %s differs from the first's %s", sent[1].Payload, sent[0].Payload)
	}
	if b := decodeAPS(t, sent[len(sent)-1].Payload).APS.Badge; b == nil || *b != 1 {
		t.Errorf("badge %v, want 1: incremented once", b)
	}
	in := w.installation("ada", "iphone-ada")
	if in.APNsEnv != installations.Development || !in.Valid || in.Badge != 1 {
		t.Errorf("installation after correction: env=%q valid=%v badge=%d, want development, valid, badge 1", in.APNsEnv, in.Valid, in.Badge)
	}
	if n := w.obs.get(outcome.EnvCorrected); n != 1 {
		t.Errorf("observed env_corrected %d times, want 1", n)
	}
	if n := w.obs.get(outcome.InvalidToken); n != 0 {
		t.Errorf("observed invalid_token %d times, want 0", n)
	}

	// A retry of the same message does not push the device again.
	sameMap(t, "retry", outcomes(w.process(job, false)), want)
	if n := len(w.apns.to(tok)); n != 2 {
		t.Errorf("a retry pushed an env_corrected device again: %d pushes", n)
	}

	// The next message goes straight to development.
	sameMap(t, "next message", outcomes(w.process(newJob("msg-2", "ada"), true)), map[string]string{"ada/iphone-ada": "delivered"})
	if got := w.apns.envs(tok); len(got) != 3 || got[2] != installations.Development {
		t.Errorf("pushes went to %v, want the third straight to development", got)
	}
}

// An installation registered with no environment is tried at production
// first, then corrected to development the same way.
func TestProcessEnvCorrectsInstallationWithoutEnv(t *testing.T) {
	w := newWorld(t)
	tok := w.iphone("iphone-ada", "ada", "", 1)
	prodTok := w.iphone("iphone-bob", "bob", "", 2)
	w.apns.answer = envScript(tok, map[string]apns.Result{installations.Production: badDeviceToken})
	rep := w.process(newJob("msg-1", "ada", "bob"), true)
	sameMap(t, "report", outcomes(rep), map[string]string{"ada/iphone-ada": "env_corrected", "bob/iphone-bob": "delivered"})
	if got := w.apns.envs(tok); !slices.Equal(got, []string{installations.Production, installations.Development}) {
		t.Errorf("pushes to ada went to %v, want production then development", got)
	}
	if got := w.apns.envs(prodTok); !slices.Equal(got, []string{installations.Production}) {
		t.Errorf("pushes to bob went to %v, want production only", got)
	}
	if in := w.installation("ada", "iphone-ada"); in.APNsEnv != installations.Development {
		t.Errorf("ada's apns_env %q, want development", in.APNsEnv)
	}
	w.process(newJob("msg-2", "ada"), true)
	if got := w.apns.envs(tok); len(got) != 3 || got[2] != installations.Development {
		t.Errorf("pushes to ada went to %v, want the third straight to development", got)
	}
}

// A token refused by both environments is invalid; so is one refused by
// its own environment when the other has no credentials.
func TestProcessEnvRefusedByBothIsInvalid(t *testing.T) {
	for _, c := range []struct {
		name, env string
		other     apns.Result
	}{
		{"both refuse", installations.Production, badDeviceToken},
		{"both refuse, from development", installations.Development, badDeviceToken},
		{"other without credentials", installations.Production, noCredentials},
		{"other without credentials, from development", installations.Development, noCredentials},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			tok := w.iphone("iphone-ada", "ada", c.env, 1)
			other := installations.Development
			if c.env == installations.Development {
				other = installations.Production
			}
			w.apns.answer = envScript(tok, map[string]apns.Result{c.env: badDeviceToken, other: c.other})
			rep := w.process(newJob("msg-1", "ada"), true)
			want := map[string]string{"ada/iphone-ada": "invalid_token"}
			sameMap(t, "report", outcomes(rep), want)
			sameMap(t, "trace", w.trace("msg-1"), want)
			if d := device(t, rep, "ada", "iphone-ada"); d.Reason != "BadDeviceToken" {
				t.Errorf("reason %q, want BadDeviceToken", d.Reason)
			}
			if got := w.apns.envs(tok); !slices.Equal(got, []string{c.env, other}) {
				t.Errorf("pushes went to %v, want %s then %s once", got, c.env, other)
			}
			in := w.installation("ada", "iphone-ada")
			if in.Valid || in.InvalidReason != "BadDeviceToken" || in.APNsEnv != c.env {
				t.Errorf("installation: valid=%v reason=%q env=%q, want invalid for BadDeviceToken, env unchanged", in.Valid, in.InvalidReason, in.APNsEnv)
			}
			if n := w.obs.get(outcome.InvalidToken); n != 1 {
				t.Errorf("observed invalid_token %d times, want 1", n)
			}
			if n := w.obs.get(outcome.EnvCorrected); n != 0 {
				t.Errorf("observed env_corrected %d times, want 0", n)
			}
		})
	}
}

// A transient answer from the other environment leaves the device to
// retry, unmarked; the retry tries both again and corrects it.
func TestProcessEnvOtherTransientRetries(t *testing.T) {
	w := newWorld(t)
	tok := w.iphone("iphone-ada", "ada", installations.Production, 1)
	w.apns.answer = func(r apns.Request, n int) apns.Result {
		switch {
		case r.Env == installations.Production:
			return badDeviceToken
		case n == 1: // the first push to development
			return apns.Result{Outcome: outcome.Retrying, Status: 503, Reason: "ServiceUnavailable", RetryAfter: 3 * time.Second}
		}
		return apns.Result{}
	}
	job := newJob("msg-1", "ada")
	rep := w.process(job, true)
	sameMap(t, "report", outcomes(rep), map[string]string{"ada/iphone-ada": "retrying"})
	if rep.Pending() != 1 || rep.RetryAfter != 3*time.Second {
		t.Errorf("Pending() = %d, RetryAfter = %v, want 1 and 3s", rep.Pending(), rep.RetryAfter)
	}
	in := w.installation("ada", "iphone-ada")
	if !in.Valid || in.InvalidReason != "" || in.APNsEnv != installations.Production {
		t.Errorf("installation after a transient answer: valid=%v reason=%q env=%q, want valid and unchanged", in.Valid, in.InvalidReason, in.APNsEnv)
	}
	if n := w.obs.get(outcome.InvalidToken); n != 0 {
		t.Errorf("observed invalid_token %d times, want 0", n)
	}

	sameMap(t, "retry", outcomes(w.process(job, false)), map[string]string{"ada/iphone-ada": "env_corrected"})
	if got := w.apns.envs(tok); !slices.Equal(got, []string{installations.Production, installations.Development, installations.Production, installations.Development}) {
		t.Errorf("pushes went to %v", got)
	}
	if in := w.installation("ada", "iphone-ada"); in.APNsEnv != installations.Development || !in.Valid {
		t.Errorf("installation after the retry: env=%q valid=%v, want development, valid", in.APNsEnv, in.Valid)
	}
}

// A device whose own environment has no credentials is no_credentials:
// nothing is tried elsewhere and the token stays valid.
func TestProcessEnvWithoutCredentialsIsNotInvalid(t *testing.T) {
	w := newWorld(t)
	tok := w.iphone("iphone-ada", "ada", installations.Development, 1)
	w.apns.answer = envScript(tok, map[string]apns.Result{installations.Development: noCredentials})
	rep := w.process(newJob("msg-1", "ada"), true)
	want := map[string]string{"ada/iphone-ada": "no_credentials"}
	sameMap(t, "report", outcomes(rep), want)
	sameMap(t, "trace", w.trace("msg-1"), want)
	if got := w.apns.envs(tok); !slices.Equal(got, []string{installations.Development}) {
		t.Errorf("pushes went to %v, want development only", got)
	}
	in := w.installation("ada", "iphone-ada")
	if !in.Valid || in.InvalidReason != "" || in.APNsEnv != installations.Development {
		t.Errorf("installation: valid=%v reason=%q env=%q, want valid, development", in.Valid, in.InvalidReason, in.APNsEnv)
	}
	if n := w.obs.get(outcome.NoCredentials); n != 1 {
		t.Errorf("observed no_credentials %d times, want 1", n)
	}
}

// Other trouble at the other gateway (auth) is not the token's fault.
func TestProcessEnvOtherAuthErrorKeepsToken(t *testing.T) {
	w := newWorld(t)
	tok := w.iphone("iphone-ada", "ada", installations.Production, 1)
	w.apns.answer = envScript(tok, map[string]apns.Result{
		installations.Production:  badDeviceToken,
		installations.Development: {Outcome: outcome.AuthError, Status: 403, Reason: "InvalidProviderToken"},
	})
	sameMap(t, "report", outcomes(w.process(newJob("msg-1", "ada"), true)), map[string]string{"ada/iphone-ada": "auth_error"})
	if in := w.installation("ada", "iphone-ada"); !in.Valid || in.APNsEnv != installations.Production {
		t.Errorf("installation: valid=%v env=%q, want valid, production", in.Valid, in.APNsEnv)
	}
}

// failingEnv is a registry whose SetAPNsEnv fails.
type failingEnv struct{ *installations.Store }

func (failingEnv) SetAPNsEnv(context.Context, string, string, string) error {
	return errors.New("database is gone")
}

// A correction that cannot be stored does not undo the delivery: the
// device is env_corrected and never pushed again for the message.
func TestProcessEnvCorrectionFailureKeepsDelivery(t *testing.T) {
	w := newWorld(t, func(w *world) { w.envRegistry = failingEnv{w.reg} })
	tok := w.iphone("iphone-ada", "ada", installations.Production, 1)
	w.apns.answer = envScript(tok, map[string]apns.Result{installations.Production: badDeviceToken})
	want := map[string]string{"ada/iphone-ada": "env_corrected"}
	sameMap(t, "report", outcomes(w.process(newJob("msg-1", "ada"), true)), want)
	sameMap(t, "trace", w.trace("msg-1"), want)
	if in := w.installation("ada", "iphone-ada"); in.APNsEnv != installations.Production {
		t.Errorf("apns_env %q: the failing store stored it", in.APNsEnv)
	}
}

type failingMutes struct{ dispatch.Mutes }

func (failingMutes) Active(context.Context, string, string, []string, time.Time) (map[string]mute.Mute, error) {
	return nil, errors.New("mutes are gone")
}

// A forced job pushes to the muted too, so it does not look mutes up.
func TestProcessForceSkipsMuteLookup(t *testing.T) {
	w := newWorld(t, withConfig(func(c *dispatch.Config) { c.Mutes = failingMutes{c.Mutes} }))
	w.android("android-bob", "bob")
	job := newJob("msg-1", "bob")
	if _, err := w.p.Process(context.Background(), job, false); err == nil {
		t.Fatal("an unforced job went on without its mutes")
	}
	job = newJob("msg-2", "bob")
	job.Force = true
	sameMap(t, "report", outcomes(w.process(job, true)), map[string]string{"bob/android-bob": "delivered"})
}
