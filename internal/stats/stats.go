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

// Counters counts pushes by app and outcome, and jobs refused at once.
type Counters struct {
	m        sync.Map // key -> *atomic.Int64
	rejected sync.Map // reason -> *atomic.Int64
}

type key struct {
	app string
	o   outcome.Outcome
}

func add(m *sync.Map, k any, n int64) {
	v, ok := m.Load(k)
	if !ok {
		v, _ = m.LoadOrStore(k, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(n)
}

// Observe counts n recipients or devices of app with outcome o.
func (c *Counters) Observe(app string, o outcome.Outcome, n int) { add(&c.m, key{app, o}, int64(n)) }

// JobRejected counts a job archived without running, by reason.
func (c *Counters) JobRejected(reason string) { add(&c.rejected, reason, 1) }

// WriteTo writes the counters in the Prometheus text format.
func (c *Counters) WriteTo(w io.Writer) (int64, error) {
	var lines []string
	c.m.Range(func(k, v any) bool {
		kk := k.(key)
		lines = append(lines, fmt.Sprintf("pushd_pushes_total{app=%q,outcome=%q} %d\n", kk.app, kk.o, v.(*atomic.Int64).Load()))
		return true
	})
	slices.Sort(lines)
	var rej []string
	c.rejected.Range(func(k, v any) bool {
		rej = append(rej, fmt.Sprintf("pushd_jobs_rejected_total{reason=%q} %d\n", k.(string), v.(*atomic.Int64).Load()))
		return true
	})
	slices.Sort(rej)
	var n int64
	for _, s := range append(append([]string{
		"# HELP pushd_pushes_total Recipients and devices by outcome (DESIGN.md vocabulary).\n",
		"# TYPE pushd_pushes_total counter\n",
	}, lines...), append([]string{
		"# HELP pushd_jobs_rejected_total Jobs archived without running: undecodable, invalid, unknown app.\n",
		"# TYPE pushd_jobs_rejected_total counter\n",
	}, rej...)...) {
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
