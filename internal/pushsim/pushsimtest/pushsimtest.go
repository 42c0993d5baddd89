// Package pushsimtest starts pushsim simulators for tests and points the real
// provider clients at them.
package pushsimtest

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/token"

	"github.com/pushd/pushd/internal/pushsim"
	"github.com/pushd/pushd/internal/pushsim/simclient"
)

// Start runs a simulator on random loopback ports for the length of the
// test. Unless cfg says otherwise, tokens the seed did not mint are
// malformed, so a test whose code damages a token sees it refused rather
// than delivered.
func Start(tb testing.TB, cfg pushsim.Config) *pushsim.Sim {
	tb.Helper()
	if cfg.DefaultFate == 0 {
		cfg.DefaultFate = pushsim.FateMalformed
	}
	sim, err := pushsim.New(cfg)
	if err != nil {
		tb.Fatalf("pushsim: %v", err)
	}
	if err := sim.Start(); err != nil {
		tb.Fatalf("pushsim: %v", err)
	}
	tb.Cleanup(func() { sim.Close() })
	return sim
}

// TrustSim makes an apns2 client trust the simulator's CA and talk to the
// gateway for env. It keeps any client certificate already configured.
func TrustSim(c *apns2.Client, sim *pushsim.Sim, env pushsim.Env) *apns2.Client {
	return simclient.APNs(c, sim, env)
}

// APNsTokenClient registers a new signing key with the simulator and returns
// a real apns2 token-authentication client for env, and its key.
func APNsTokenClient(tb testing.TB, sim *pushsim.Sim, env pushsim.Env) (*apns2.Client, *pushsim.APNsKey) {
	tb.Helper()
	k, err := sim.NewAPNsKey("", "")
	if err != nil {
		tb.Fatal(err)
	}
	tok := &token.Token{AuthKey: k.Key, KeyID: k.KeyID, TeamID: k.TeamID}
	return simclient.APNs(apns2.NewTokenClient(tok), sim, env), k
}

// APNsCertClient returns a real apns2 certificate-authentication client for env.
func APNsCertClient(sim *pushsim.Sim, cert tls.Certificate, env pushsim.Env) *apns2.Client {
	return simclient.APNs(apns2.NewClient(cert), sim, env)
}

// FCMClient registers a new service account of saProject with the
// simulator and returns a real Firebase messaging client that sends as
// project appProject (the same project unless a test wants a mismatch).
func FCMClient(tb testing.TB, sim *pushsim.Sim, saProject, appProject string) (*simclient.FCM, *pushsim.ServiceAccount) {
	tb.Helper()
	sa, err := sim.NewServiceAccount(saProject)
	if err != nil {
		tb.Fatal(err)
	}
	saJSON, err := sa.JSON(sim.TokenURL())
	if err != nil {
		tb.Fatal(err)
	}
	c, err := simclient.NewFCM(context.Background(), sim, saJSON, appProject)
	if err != nil {
		tb.Fatal(err)
	}
	return c, sa
}

// Clock is a settable time source for pushsim.Config.Now, so that tests
// move through fault windows and token lifetimes without sleeping.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock reading start.
func NewClock(start time.Time) *Clock { return &Clock{t: start} }

// Now reads the clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// InFlight runs send b.N times with inflight calls at once (one goroutine
// each; a plain loop for 1), after resetting the timer, and reports the
// rate as unit ("pushes/s"). send reports whether the provider accepted;
// any refusal fails the benchmark, whose figure would then measure errors.
func InFlight(b *testing.B, inflight int, unit string, send func() bool) {
	b.Helper()
	var failed atomic.Int64
	do := func() {
		if !send() {
			failed.Add(1)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	if inflight <= 1 {
		for b.Loop() {
			do()
		}
	} else {
		// RunParallel starts parallelism × GOMAXPROCS goroutines.
		b.SetParallelism(max(1, inflight/runtime.GOMAXPROCS(0)))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				do()
			}
		})
	}
	b.StopTimer()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d of %d sends were refused", f, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit)
}

// WriteFile writes b to name in dir, readable by its owner only as a
// credential would be, and returns its path.
func WriteFile(tb testing.TB, dir, name string, b []byte) string {
	tb.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}
