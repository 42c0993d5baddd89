package pushsim

import (
	"sync"
	"testing"
)

func TestGaugeResetKeepsRequestsInFlight(t *testing.T) {
	r := newRecorder(10)
	g := r.gauge(ListenerAPNsDevelopment)
	g.enter()
	g.enter()
	g.enter()
	g.leave()
	if got := r.inFlight(true)[ListenerAPNsDevelopment]; got != 3 {
		t.Fatalf("peak = %d, want 3", got)
	}
	// The two requests still being handled overlap whatever comes after
	// the reset, so the new peak starts from them, and they leave without
	// driving the count below zero.
	r.reset()
	if got := r.inFlight(true)[ListenerAPNsDevelopment]; got != 2 {
		t.Errorf("peak after reset with 2 in flight = %d, want 2", got)
	}
	g.leave()
	g.leave()
	if got := r.inFlight(false)[ListenerAPNsDevelopment]; got != 0 {
		t.Errorf("in flight = %d, want 0", got)
	}
	r.reset()
	for l, n := range r.inFlight(true) {
		if n != 0 {
			t.Errorf("peak of %s after reset = %d, want 0", l, n)
		}
	}
	if r.gauge(ListenerFCMOAuth) != nil {
		t.Error("the token endpoint has a gauge; it takes no pushes")
	}
}

func TestGaugeConcurrent(t *testing.T) {
	const workers, rounds = 8, 1000
	var g gauge
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range rounds {
				g.enter()
				if p := g.peak.Load(); p < 1 || p > workers {
					t.Errorf("peak = %d with %d workers", p, workers)
					return
				}
				g.leave()
			}
		})
	}
	wg.Wait()
	if cur, peak := g.cur.Load(), g.peak.Load(); cur != 0 || peak < 1 || peak > workers {
		t.Errorf("after the workers: in flight %d, peak %d; want 0 and 1 to %d", cur, peak, workers)
	}
}

// BenchmarkGauge is the gauge's cost on the hot path, every core entering
// and leaving one listener's gauge.
func BenchmarkGauge(b *testing.B) {
	var g gauge
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			g.enter()
			g.leave()
		}
	})
}
