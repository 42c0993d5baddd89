package dispatch_test

// Regression tests for the defects of issue 11, driven through the asynq
// handler as pushd runs it. A task run here carries no retry count, as a
// throttled retry's never grows: what the job already did must come from
// its record.

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/apns"
	"github.com/pushd/pushd/internal/dispatch"
	"github.com/pushd/pushd/internal/installations"
	"github.com/pushd/pushd/internal/outcome"
	"github.com/pushd/pushd/pushjob"
)

var throttled = apns.Result{Outcome: outcome.Retrying, Status: 429, Reason: "TooManyRequests"}

// runTask runs one attempt of job through the worker and returns its
// *RetryError, or nil when the job is done.
func runTask(t *testing.T, w *world, job pushjob.Job) *dispatch.RetryError {
	t.Helper()
	wk, _ := newWorker(w)
	err := wk.ProcessTask(context.Background(), task(t, job))
	if err == nil {
		return nil
	}
	var re *dispatch.RetryError
	if !errors.As(err, &re) {
		t.Fatalf("ProcessTask: %v", err)
	}
	return re
}

// Defect 2: APNs 429 without Retry-After was retried about every five
// seconds, forever. It waits at least a minute, and a job throttled past
// the longest wait (24 h after its message) ends, its devices failed with
// reason throttled.
func TestRegressionThrottleWithoutRetryAfter(t *testing.T) {
	w := newWorld(t)
	w.iphone("iphone-alice", "alice", installations.Production, 1)
	w.apns.answer = func(apns.Request, int) apns.Result { return throttled }

	re := runTask(t, w, newJob("m1", "alice"))
	if re == nil || !re.Throttled || re.After < time.Minute {
		t.Fatalf("throttled without Retry-After: %+v, want a throttled retry after at least a minute", re)
	}
	if d := dispatch.RetryDelay(0, re, nil); d < time.Minute {
		t.Errorf("RetryDelay = %v, want at least a minute", d)
	}

	old := newJob("m2", "alice")
	old.Timestamp = t0.Add(-dispatch.DefaultMaxWait)
	if re := runTask(t, w, old); re != nil {
		t.Fatalf("a job throttled for a day is retried again: %v", re)
	}
	rows, err := w.del.Trace(context.Background(), "default", "m2")
	if err != nil || len(rows) != 1 || rows[0].Outcome != string(outcome.Failed) || !strings.HasPrefix(rows[0].Reason, "throttled") {
		t.Errorf("trace %+v, %v; want alice's device failed, reason throttled", rows, err)
	}

	// A TTL ends it too, before the next wait would pass it.
	ttl := newJob("m3", "alice")
	ttl.TTLSeconds = 30
	if re := runTask(t, w, ttl); re != nil {
		t.Fatalf("a job whose TTL ends before the next try is retried: %v", re)
	}
	if tr := w.trace("m3"); tr["alice/iphone-alice"] != string(outcome.Failed) {
		t.Errorf("trace %v, want alice's device failed", tr)
	}
}

// Defect 3: a throttled retry counted as a first attempt again: muted and
// no_device recipients were counted on every attempt, and once the TTL
// passed, expired was written over recipients already delivered or muted
// while the throttled device stayed retrying for good.
func TestRegressionThrottledRetryIsNotFirst(t *testing.T) {
	w := newWorld(t)
	w.iphone("iphone-alice", "alice", installations.Production, 1)
	w.iphone("iphone-bob", "bob", installations.Production, 2)
	w.mute("dave", "conv-1", false)
	w.apns.answer = func(r apns.Request, n int) apns.Result {
		if r.Token == apnsToken(1) {
			return throttled
		}
		return apns.Result{}
	}
	job := newJob("m1", "alice", "bob", "carol", "dave")
	job.ExpiresAt = new(t0.Add(time.Hour))
	for range 3 {
		if re := runTask(t, w, job); re == nil || !re.Throttled {
			t.Fatalf("attempt: %+v, want a throttled retry", re)
		}
	}
	for o, want := range map[outcome.Outcome]int{outcome.Muted: 1, outcome.NoDevice: 1, outcome.Delivered: 1} {
		if got := w.obs.get(o); got != want {
			t.Errorf("%s counted %d times over three attempts, want %d", o, got, want)
		}
	}

	// The same message, now past its expiry.
	job.ExpiresAt = new(t0.Add(-time.Second))
	if re := runTask(t, w, job); re != nil {
		t.Fatalf("expired job retried: %v", re)
	}
	sameMap(t, "trace", w.trace("m1"), map[string]string{
		"alice/iphone-alice": "expired",
		"bob/iphone-bob":     "delivered",
		"carol":              "no_device",
		"dave":               "muted",
	})
	if got := w.obs.get(outcome.Expired); got != 1 {
		t.Errorf("expired counted %d, want 1 (alice's device)", got)
	}
}

// Defect 4: a recipient whose only device was marked invalid got a
// no_device row beside its device's invalid_token row from the second
// attempt on.
func TestRegressionInvalidDeviceIsNotNoDevice(t *testing.T) {
	w := newWorld(t)
	w.iphone("iphone-alice", "alice", installations.Production, 1)
	w.iphone("iphone-bob", "bob", installations.Production, 2)
	w.apns.answer = func(r apns.Request, n int) apns.Result {
		switch {
		case r.Token == apnsToken(1):
			return apns.Result{Outcome: outcome.InvalidToken, Status: 410, Reason: "Unregistered"}
		case n == 0:
			return apns.Result{Outcome: outcome.Retrying, Status: 503, Reason: "ServiceUnavailable"}
		}
		return apns.Result{}
	}
	job := newJob("m1", "alice", "bob")
	if re := runTask(t, w, job); re == nil {
		t.Fatal("first attempt: want bob retried")
	}
	if re := runTask(t, w, job); re != nil {
		t.Fatalf("second attempt: %v", re)
	}
	sameMap(t, "trace", w.trace("m1"), map[string]string{
		"alice/iphone-alice": "invalid_token",
		"bob/iphone-bob":     "delivered",
	})
	if got := w.obs.get(outcome.NoDevice); got != 0 {
		t.Errorf("no_device counted %d, want 0", got)
	}
}

// Defect 5: "uninstalled" read as "never installed". A recipient whose
// every device was marked invalid is no_device with reason all_invalid,
// naming when and why the last device died; one who never registered is
// never_registered.
func TestRegressionAllInvalidIsNotNeverRegistered(t *testing.T) {
	w := newWorld(t)
	w.iphone("iphone-alice", "alice", installations.Production, 1)
	w.apns.answer = func(apns.Request, int) apns.Result {
		return apns.Result{Outcome: outcome.InvalidToken, Status: 410, Reason: "Unregistered"}
	}
	runTask(t, w, newJob("m1", "alice"))
	runTask(t, w, newJob("m2", "alice", "carol"))
	rows, err := w.del.Trace(context.Background(), "default", "m2")
	if err != nil {
		t.Fatal(err)
	}
	reasons := make(map[string]string)
	for _, r := range rows {
		if r.Outcome != string(outcome.NoDevice) {
			t.Errorf("row %+v, want no_device", r)
		}
		reasons[r.ClientID] = r.Reason
	}
	if r := reasons["alice"]; !strings.HasPrefix(r, "all_invalid") || !strings.Contains(r, "Unregistered") || !strings.Contains(r, t0.Format(time.RFC3339)) {
		t.Errorf("alice's reason %q, want all_invalid with when and why", r)
	}
	if r := reasons["carol"]; r != "never_registered" {
		t.Errorf("carol's reason %q, want never_registered", r)
	}
}

// Defect 6: the retrying count grew by one per device per attempt. A
// device is counted once, by its final outcome.
func TestRegressionRetryingCountedOnce(t *testing.T) {
	w := newWorld(t)
	w.iphone("iphone-alice", "alice", installations.Production, 1)
	w.apns.answer = func(r apns.Request, n int) apns.Result {
		if n < 3 {
			return apns.Result{Outcome: outcome.Retrying, Status: 503, Reason: "ServiceUnavailable"}
		}
		return apns.Result{}
	}
	job := newJob("m1", "alice")
	for range 3 {
		if re := runTask(t, w, job); re == nil {
			t.Fatal("want a retry")
		}
	}
	if re := runTask(t, w, job); re != nil {
		t.Fatalf("fourth attempt: %v", re)
	}
	if got := w.obs.get(outcome.Retrying); got != 0 {
		t.Errorf("retrying counted %d times, want 0: it is no final outcome", got)
	}
	if got := w.obs.get(outcome.Delivered); got != 1 {
		t.Errorf("delivered counted %d times, want once", got)
	}
	// The attempts are counted apart, each one.
	w.obs.mu.Lock()
	defer w.obs.mu.Unlock()
	if a := w.obs.attempts; a["apns/retrying"] != 3 || a["apns/delivered"] != 1 {
		t.Errorf("attempts %v, want apns/retrying 3 and apns/delivered 1", a)
	}
}

// A job enqueued without a timestamp (by an IM server that writes its own
// tasks rather than through pushjob.NewTask) counts its TTL and the retry
// bounds from its first attempt, which its record keeps, not from each
// attempt anew: found in review, after defect 2's fix.
func TestRegressionUnstampedJobKeepsItsTTL(t *testing.T) {
	clock := t0
	w := newWorld(t, withClock(func() time.Time { return clock }))
	w.iphone("iphone-alice", "alice", installations.Production, 1)
	w.apns.answer = func(r apns.Request, n int) apns.Result {
		if n == 0 {
			return apns.Result{Outcome: outcome.Retrying, Status: 503, Reason: "ServiceUnavailable"}
		}
		return apns.Result{}
	}
	raw := []byte(`{"message_id":"m1","conversation_id":"conv-1","recipients":["alice"],"ttl_seconds":60}`)
	wk, _ := newWorker(w)
	if err := wk.ProcessTask(context.Background(), task(t, raw)); err == nil {
		t.Fatal("first attempt: want a retry")
	}
	clock = t0.Add(2 * time.Minute)
	if err := wk.ProcessTask(context.Background(), task(t, raw)); err != nil {
		t.Fatalf("second attempt, past the TTL: %v", err)
	}
	if n := len(w.apns.to(apnsToken(1))); n != 1 {
		t.Errorf("alice was pushed %d times; past its TTL the retry must not push", n)
	}
	if tr := w.trace("m1"); tr["alice/iphone-alice"] != "expired" {
		t.Errorf("trace %v, want alice's device expired", tr)
	}
}
