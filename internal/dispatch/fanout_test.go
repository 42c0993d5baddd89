package dispatch_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/dispatch"
	"github.com/pushd/pushd/internal/installations"
	"github.com/pushd/pushd/internal/outcome"
)

// Batches sending at once share the total bound: however many jobs run,
// no more pushes (and goroutines) than the total are in flight, and each
// batch keeps to its own bound too.
func TestFanoutBoundsAllBatches(t *testing.T) {
	f := dispatch.NewFanout(4, 6)
	var cur, peak atomic.Int64
	perBatchPeak := make([]atomic.Int64, 5)
	perBatchCur := make([]atomic.Int64, 5)
	send := func(b int) func(installations.Installation) dispatch.Result {
		return func(installations.Installation) dispatch.Result {
			n := cur.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			m := perBatchCur[b].Add(1)
			for p := perBatchPeak[b].Load(); m > p && !perBatchPeak[b].CompareAndSwap(p, m); p = perBatchPeak[b].Load() {
			}
			time.Sleep(2 * time.Millisecond)
			perBatchCur[b].Add(-1)
			cur.Add(-1)
			return dispatch.Result{Outcome: outcome.Delivered}
		}
	}
	var wg sync.WaitGroup
	for b := range 5 {
		wg.Go(func() {
			batch := &dispatch.Batch{Devices: make([]installations.Installation, 30)}
			res := f.Each(batch, send(b))
			for i, r := range res {
				if r.Outcome != outcome.Delivered {
					t.Errorf("batch %d device %d: %+v", b, i, r)
				}
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p > 6 || p < 5 {
		t.Errorf("%d sends in flight at once across 5 batches, want at most the total of 6 (and near it)", p)
	}
	for b := range perBatchPeak {
		if p := perBatchPeak[b].Load(); p > 4 {
			t.Errorf("batch %d had %d sends in flight, want at most 4", b, p)
		}
	}
}
