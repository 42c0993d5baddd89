package dispatch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"firebase.google.com/go/v4/messaging"
	"github.com/hibiken/asynq"

	"github.com/pushd/pushd/internal/apns"
	"github.com/pushd/pushd/internal/dispatch"
	"github.com/pushd/pushd/internal/fcm"
	"github.com/pushd/pushd/internal/installations"
	"github.com/pushd/pushd/internal/outcome"
	"github.com/pushd/pushd/pushjob"
)

// rejections records the reasons a worker gave for archiving jobs.
type rejections struct {
	mu      sync.Mutex
	reasons []string
}

func (r *rejections) add(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reasons = append(r.reasons, reason)
}

func (r *rejections) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.reasons...)
}

func newWorker(w *world) (*dispatch.Worker, *rejections) {
	wk := dispatch.NewWorker(w.p, nil)
	rej := &rejections{}
	wk.Rejected = rej.add
	return wk, rej
}

func task(t *testing.T, job any) *asynq.Task {
	t.Helper()
	b, ok := job.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(job); err != nil {
			t.Fatal(err)
		}
	}
	return asynq.NewTask(pushjob.TaskType, b)
}

// A job that can never run is archived at once, with a reason an operator
// can read, and counted; nothing is sent or recorded.
func TestWorkerArchivesJobsThatCannotRun(t *testing.T) {
	for _, c := range []struct {
		name    string
		payload any
		reason  string
		// mention is what the error must say for an operator.
		mention []string
	}{
		{"undecodable", []byte(`{"message_id": "m1", "recipients": [`), "invalid_job", []string{"malformed JSON"}},
		{"not an object", []byte(`"hello"`), "invalid_job", []string{"want an object"}},
		{"unknown field", []byte(`{"message_id":"m1","conversation_id":"c","recipients":["alice"],"colour":"red"}`),
			"invalid_job", []string{"colour", "unknown field"}},
		{"missing fields", map[string]any{"recipients": []string{"alice"}}, "invalid_job",
			[]string{"message_id: required", "conversation_id: required"}},
		{"too many recipients", map[string]any{"message_id": "m1", "conversation_id": "c", "recipients": manyRecipients(pushjob.MaxRecipients + 1)},
			"invalid_job", []string{fmt.Sprintf("recipients: at most %d recipients", pushjob.MaxRecipients)}},
		{"unknown app", map[string]any{"app_id": "nope", "message_id": "m1", "conversation_id": "c", "recipients": []string{"alice"}},
			"unknown_app", []string{`"nope"`, "unknown app"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			w.iphone("iphone-alice", "alice", installations.Production, 1)
			wk, rej := newWorker(w)
			err := wk.ProcessTask(context.Background(), task(t, c.payload))
			if !errors.Is(err, asynq.SkipRetry) {
				t.Fatalf("ProcessTask: %v, want an error wrapping asynq.SkipRetry", err)
			}
			for _, m := range c.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
			var re *dispatch.RetryError
			if errors.As(err, &re) {
				t.Errorf("a job that cannot run asks for a retry: %v", re)
			}
			if got := rej.list(); len(got) != 1 || got[0] != c.reason {
				t.Errorf("Rejected got %q, want [%s]", got, c.reason)
			}
			if n := w.apns.count() + w.fcm.count(); n != 0 {
				t.Errorf("sent %d pushes", n)
			}
			if tr := w.trace("m1"); len(tr) != 0 {
				t.Errorf("recorded %v", tr)
			}
		})
	}
}

func manyRecipients(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("user-%d", i)
	}
	return out
}

func TestWorkerDeliversJob(t *testing.T) {
	w := newWorld(t)
	alice := w.iphone("iphone-alice", "alice", installations.Production, 1)
	wk, rej := newWorker(w)
	job := map[string]any{"message_id": "m1", "conversation_id": "conv-1", "recipients": []string{"alice", "gina"}}
	if err := wk.ProcessTask(context.Background(), task(t, job)); err != nil {
		t.Fatalf("ProcessTask: %v", err)
	}
	if n := len(w.apns.to(alice)); n != 1 {
		t.Errorf("%d pushes to alice, want 1", n)
	}
	sameMap(t, "trace", w.trace("m1"), map[string]string{"alice/iphone-alice": "delivered", "gina": "no_device"})
	if got := rej.list(); len(got) != 0 {
		t.Errorf("Rejected %q", got)
	}
}

// A job past its expiry is done, not failed: nothing to retry.
func TestWorkerDropsExpiredJob(t *testing.T) {
	w := newWorld(t)
	w.iphone("iphone-alice", "alice", installations.Production, 1)
	wk, rej := newWorker(w)
	job := map[string]any{"message_id": "m1", "conversation_id": "conv-1", "recipients": []string{"alice"},
		"expires_at": t0.Add(-time.Minute)}
	if err := wk.ProcessTask(context.Background(), task(t, job)); err != nil {
		t.Fatalf("ProcessTask: %v", err)
	}
	if n := w.apns.count(); n != 0 {
		t.Errorf("sent %d pushes for an expired job", n)
	}
	sameMap(t, "trace", w.trace("m1"), map[string]string{"alice": "expired"})
	if got := rej.list(); len(got) != 0 {
		t.Errorf("an expired job was counted as rejected: %q", got)
	}
}

// A job with devices left to retry returns a *RetryError that says how
// many, how long the provider asked to wait, and whether it was only
// throttling, which must not spend the retry budget.
func TestWorkerRetryError(t *testing.T) {
	retry := func(reason string, after time.Duration) apns.Result {
		status := map[string]int{"ServiceUnavailable": 503, "TooManyRequests": 429}[reason]
		return apns.Result{Outcome: outcome.Retrying, Status: status, Reason: reason, RetryAfter: after}
	}
	for _, c := range []struct {
		name      string
		alice     apns.Result // the APNs device's answer
		carol     fcm.Result  // the FCM device's answer
		pending   int
		after     time.Duration
		throttled bool
	}{
		{
			name:    "unavailable",
			alice:   retry("ServiceUnavailable", 0),
			pending: 1,
		},
		{
			name:    "unavailable with Retry-After",
			alice:   retry("ServiceUnavailable", 30*time.Second),
			carol:   fcm.Result{Outcome: outcome.Retrying, Code: "UNAVAILABLE", RetryAfter: 10 * time.Second},
			pending: 2, after: 30 * time.Second,
		},
		{
			name:    "APNs throttled",
			alice:   retry("TooManyRequests", 90*time.Second),
			pending: 1, after: 90 * time.Second, throttled: true,
		},
		{
			// Throttling waits at least a minute, whatever the provider
			// says (issue 11, defect 2).
			name:    "APNs throttled, short Retry-After",
			alice:   retry("TooManyRequests", 20*time.Second),
			pending: 1, after: time.Minute, throttled: true,
		},
		{
			name:    "APNs throttled without Retry-After",
			alice:   retry("TooManyRequests", 0),
			pending: 1, after: time.Minute, throttled: true,
		},
		{
			name:    "FCM quota",
			carol:   fcm.Result{Outcome: outcome.Retrying, Code: "QUOTA_EXCEEDED", RetryAfter: time.Minute, Throttled: true},
			pending: 1, after: time.Minute, throttled: true,
		},
		{
			name:    "FCM 429 without its detail",
			carol:   fcm.Result{Outcome: outcome.Retrying, Code: "RESOURCE_EXHAUSTED", RetryAfter: time.Minute, Throttled: true},
			pending: 1, after: time.Minute, throttled: true,
		},
		{
			name:    "both throttled",
			alice:   retry("TooManyRequests", 0),
			carol:   fcm.Result{Outcome: outcome.Retrying, Code: "QUOTA_EXCEEDED", RetryAfter: time.Minute, Throttled: true},
			pending: 2, after: time.Minute, throttled: true,
		},
		{
			// Spends budget, but the throttled device is not asked
			// again within the floor.
			name:    "throttled and unavailable",
			alice:   retry("TooManyRequests", 0),
			carol:   fcm.Result{Outcome: outcome.Retrying, Code: "INTERNAL"},
			pending: 2, after: time.Minute,
		},
		{
			name:    "network error",
			alice:   apns.Result{Outcome: outcome.Retrying, Err: errors.New("connection reset by peer")},
			pending: 1,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			w.iphone("iphone-alice", "alice", installations.Production, 1)
			w.android("android-carol", "carol")
			w.iphone("iphone-bob", "bob", installations.Production, 2) // always delivered
			w.apns.answer = func(r apns.Request, n int) apns.Result {
				if r.Token == apnsToken(1) {
					return c.alice
				}
				return apns.Result{}
			}
			w.fcm.answer = func(*messaging.Message, int) fcm.Result { return c.carol }
			wk, rej := newWorker(w)
			job := map[string]any{"message_id": "m1", "conversation_id": "conv-1", "recipients": []string{"alice", "bob", "carol"}}
			err := wk.ProcessTask(context.Background(), task(t, job))
			var re *dispatch.RetryError
			if !errors.As(err, &re) {
				t.Fatalf("ProcessTask: %v, want a *RetryError", err)
			}
			if re.Pending != c.pending || re.After != c.after || re.Throttled != c.throttled {
				t.Errorf("RetryError{Pending: %d, After: %v, Throttled: %v}, want {%d, %v, %v}",
					re.Pending, re.After, re.Throttled, c.pending, c.after, c.throttled)
			}
			if errors.Is(err, asynq.SkipRetry) {
				t.Error("a transient failure skips retries")
			}
			if got := dispatch.IsFailure(err); got == c.throttled {
				t.Errorf("IsFailure = %v, want %v", got, !c.throttled)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("%d devices to retry", c.pending)) {
				t.Errorf("error %q does not say how many devices are left", err)
			}
			if c.after > 0 {
				if d := dispatch.RetryDelay(0, err, nil); d != c.after {
					t.Errorf("RetryDelay = %v, want the provider's %v", d, c.after)
				}
			}
			if got := rej.list(); len(got) != 0 {
				t.Errorf("Rejected %q", got)
			}
			// The device that accepted the message is recorded, so that
			// the retry leaves it alone.
			if tr := w.trace("m1"); tr["bob/iphone-bob"] != "delivered" {
				t.Errorf("trace %v: bob's delivery is not recorded", tr)
			}
		})
	}
}

func TestIsFailure(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"plain error", errors.New("database is gone"), true},
		{"skip retry", fmt.Errorf("%w: invalid job", asynq.SkipRetry), true},
		{"retry", &dispatch.RetryError{Pending: 3}, true},
		{"retry after", &dispatch.RetryError{Pending: 3, After: time.Minute}, true},
		{"throttled", &dispatch.RetryError{Pending: 3, Throttled: true}, false},
		{"throttled, wrapped", fmt.Errorf("attempt 2: %w", &dispatch.RetryError{Pending: 1, Throttled: true}), false},
	} {
		if got := dispatch.IsFailure(c.err); got != c.want {
			t.Errorf("%s: IsFailure(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}

func TestRetryDelay(t *testing.T) {
	const ceiling = 7*time.Minute + 30*time.Second
	for _, err := range []error{
		&dispatch.RetryError{After: 42 * time.Second},
		fmt.Errorf("wrapped: %w", &dispatch.RetryError{Pending: 2, After: 42 * time.Second}),
	} {
		for _, n := range []int{0, 5, 20} {
			if d := dispatch.RetryDelay(n, err, nil); d != 42*time.Second {
				t.Errorf("RetryDelay(%d, %v) = %v, want the provider's 42s", n, err, d)
			}
		}
	}

	// Without a Retry-After the delay backs off exponentially from a
	// second, with jitter of at most half again, and never passes 7.5
	// minutes. Each n is sampled often enough that jitter shows its range.
	for _, err := range []error{errors.New("database is gone"), &dispatch.RetryError{Pending: 1}} {
		prevLow := time.Duration(0)
		for n := range 25 {
			base := min(time.Second<<min(n, 20), 5*time.Minute)
			low, high := time.Duration(1<<62), time.Duration(0)
			for range 200 {
				d := dispatch.RetryDelay(n, err, nil)
				low, high = min(low, d), max(high, d)
			}
			if low < base || high > base+base/2 {
				t.Errorf("RetryDelay(%d) ranged over [%v, %v], want within [%v, %v]", n, low, high, base, base+base/2)
			}
			if high > ceiling {
				t.Errorf("RetryDelay(%d) reached %v, over %v", n, high, ceiling)
			}
			if low < prevLow {
				t.Errorf("RetryDelay(%d) as low as %v, below the %v of n=%d: the backoff must not shrink", n, low, prevLow, n-1)
			}
			prevLow = base
		}
	}
}

// When retries run out, the devices still waiting are recorded as failed,
// so the trace shows them rather than nothing.
func TestRecordFailedWhenRetriesRunOut(t *testing.T) {
	w := newWorld(t)
	w.iphone("iphone-alice", "alice", installations.Production, 1)
	w.iphone("iphone-bob", "bob", installations.Production, 2)
	w.apns.answer = func(r apns.Request, n int) apns.Result {
		if r.Token == apnsToken(1) {
			return apns.Result{Outcome: outcome.Retrying, Reason: "ServiceUnavailable"}
		}
		return apns.Result{}
	}
	job := pushjob.Job{MessageID: "m1", ConversationID: "conv-1", Recipients: []string{"alice", "bob"}}
	job.Normalize()
	// The last attempt the budget allows.
	rep, err := w.p.Process(context.Background(), job, true)
	if err != nil {
		t.Fatal(err)
	}
	tr := w.trace("m1")
	if tr["alice/iphone-alice"] != "failed" || tr["bob/iphone-bob"] != "delivered" {
		t.Errorf("trace %v: want alice failed (ServiceUnavailable) and bob delivered", tr)
	}
	if rep.Pending() != 0 {
		t.Errorf("after the last attempt %d devices still pending", rep.Pending())
	}
}

// Each attempt is logged at debug level only; the summary tells the
// totals since the last one at INFO, once, and nothing when idle.
func TestWorkerLogsSummary(t *testing.T) {
	w := newWorld(t)
	w.iphone("iphone-alice", "alice", installations.Production, 1)
	var logs bytes.Buffer
	wk := dispatch.NewWorker(w.p, slog.New(slog.NewTextHandler(&logs, nil)))
	for _, id := range []string{"m1", "m2"} {
		job := map[string]any{"message_id": id, "conversation_id": "conv-1", "recipients": []string{"alice", "bob"}}
		if err := wk.ProcessTask(context.Background(), task(t, job)); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Contains(logs.String(), "job processed") {
		t.Errorf("a line per job at INFO:\n%s", logs.String())
	}
	wk.LogSummary()
	wk.LogSummary()
	got := logs.String()
	if strings.Count(got, "jobs processed") != 1 || !strings.Contains(got, "attempts=2 delivered=2 no_device=2") {
		t.Errorf("summary:\n%s\nwant one line: attempts=2 delivered=2 no_device=2", got)
	}

	var debug bytes.Buffer
	wk = dispatch.NewWorker(w.p, slog.New(slog.NewTextHandler(&debug, &slog.HandlerOptions{Level: slog.LevelDebug})))
	job := map[string]any{"message_id": "m3", "conversation_id": "conv-1", "recipients": []string{"alice"}}
	if err := wk.ProcessTask(context.Background(), task(t, job)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(debug.String(), "level=DEBUG msg=\"job processed\" app=default message_id=m3") {
		t.Errorf("debug log:\n%s", debug.String())
	}
}
