// Package stats counts outcomes by app for dashboards, and serves them in
// the Prometheus text format.
package stats

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/pushd/pushd/internal/outcome"
)

// Counters counts pushes by app and final outcome, attempts by provider,
// and jobs refused at once.
type Counters struct {
	m        sync.Map // key -> *atomic.Int64
	attempts sync.Map // attemptKey -> *atomic.Int64
	rejected sync.Map // reason -> *atomic.Int64
}

type key struct {
	app string
	o   outcome.Outcome
	why string
}

type attemptKey struct {
	app, provider string
	o             outcome.Outcome
	reason        string
}

func add(m *sync.Map, k any, n int64) {
	v, ok := m.Load(k)
	if !ok {
		v, _ = m.LoadOrStore(k, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(n)
}

// Observe counts n recipients or devices of app that reached the final
// outcome o; why is a bounded class of reason, or empty. Each is counted
// once, however many attempts it took.
func (c *Counters) Observe(app string, o outcome.Outcome, why string, n int) {
	add(&c.m, key{app, o, why}, int64(n))
}

// Attempt counts n pushes' answer by provider, final or not. The
// provider's reason is a label only when it is one of its codes
// (BadDeviceToken, QUOTA_EXCEEDED); error texts, which are unbounded,
// count as "other".
func (c *Counters) Attempt(app, provider string, o outcome.Outcome, reason string, n int) {
	add(&c.attempts, attemptKey{app, provider, o, reasonLabel(reason)}, int64(n))
}

// reasonLabel bounds a reason label's values to the providers' codes:
// short identifiers; anything else (an error's text) is "other".
func reasonLabel(reason string) string {
	if len(reason) > 40 {
		return "other"
	}
	for _, r := range reason {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return "other"
		}
	}
	return reason
}

// JobRejected counts a job archived without running, by reason.
func (c *Counters) JobRejected(reason string) { add(&c.rejected, reason, 1) }

// WriteTo writes the counters in the Prometheus text format.
func (c *Counters) WriteTo(w io.Writer) (int64, error) {
	var lines []string
	c.m.Range(func(k, v any) bool {
		kk := k.(key)
		lines = append(lines, fmt.Sprintf("pushd_pushes_total{app=%q,outcome=%q,reason=%q} %d\n", kk.app, kk.o, kk.why, v.(*atomic.Int64).Load()))
		return true
	})
	slices.Sort(lines)
	var att []string
	c.attempts.Range(func(k, v any) bool {
		kk := k.(attemptKey)
		att = append(att, fmt.Sprintf("pushd_attempts_total{app=%q,provider=%q,outcome=%q,reason=%q} %d\n", kk.app, kk.provider, kk.o, kk.reason, v.(*atomic.Int64).Load()))
		return true
	})
	slices.Sort(att)
	var rej []string
	c.rejected.Range(func(k, v any) bool {
		rej = append(rej, fmt.Sprintf("pushd_jobs_rejected_total{reason=%q} %d\n", k.(string), v.(*atomic.Int64).Load()))
		return true
	})
	slices.Sort(rej)
	var n int64
	for _, s := range append(append([]string{
		"# HELP pushd_pushes_total Recipients and devices by final outcome (DESIGN.md vocabulary), each counted once.\n",
		"# TYPE pushd_pushes_total counter\n",
	}, lines...), append(append([]string{
		"# HELP pushd_attempts_total Pushes sent, by provider and answer: every attempt, final or not.\n",
		"# TYPE pushd_attempts_total counter\n",
	}, att...), append([]string{
		"# HELP pushd_jobs_rejected_total Jobs archived without running: undecodable, invalid, unknown app.\n",
		"# TYPE pushd_jobs_rejected_total counter\n",
	}, rej...)...)...) {
		m, err := io.WriteString(w, s)
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Handler serves the counters at /metrics.
func (c *Counters) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		c.WriteTo(w)
	})
}
