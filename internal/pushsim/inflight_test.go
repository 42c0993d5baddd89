package pushsim_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"firebase.google.com/go/v4/messaging"

	"github.com/pushd/pushd/internal/pushsim"
	"github.com/pushd/pushd/internal/pushsim/pushsimtest"
)

// waitInFlight waits until listener is handling want requests. Handlers
// notice a cancelled request on their own goroutines, so the count settles
// a little after the client has given up.
func waitInFlight(t *testing.T, sim *pushsim.Sim, listener string, want int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := sim.InFlight()[listener]
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is handling %d requests after 30s, want %d", listener, got, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// holdInFlight makes n sends at once to a listener whose answers are
// delayed by an hour, waits until the simulator is handling all n, then
// cancels them and waits until it has let go of every one. The long delay
// makes the peak exactly n however slowly the machine schedules the sends.
func holdInFlight(t *testing.T, sim *pushsim.Sim, listener string, n int, send func(ctx context.Context, i int) error) {
	t.Helper()
	f, err := sim.AddFault(pushsim.Fault{Kind: pushsim.FaultLatency, Listener: listener, Latency: pushsim.Duration(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.RemoveFault(f.ID)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	// On a failed wait, the sends must end before the test does.
	defer wg.Wait()
	defer cancel()
	for i := range n {
		wg.Go(func() {
			if err := send(ctx, i); err == nil {
				t.Errorf("send %d was answered through an hour of latency", i)
			}
		})
	}
	waitInFlight(t, sim, listener, int64(n))
	cancel()
	wg.Wait()
	waitInFlight(t, sim, listener, 0)
}

// wantListeners checks a figure of every push listener; those missing
// from want should be 0, and none may be missing from got.
func wantListeners(t *testing.T, what string, got, want map[string]int64) {
	t.Helper()
	for _, l := range []string{pushsim.ListenerAPNsProduction, pushsim.ListenerAPNsDevelopment, pushsim.ListenerFCM} {
		if g, ok := got[l]; !ok || g != want[l] {
			t.Errorf("%s of %s = %d (reported: %v), want %d; all: %v", what, l, g, ok, want[l], got)
		}
	}
}

func TestFCMInFlightPeak(t *testing.T) {
	e := newFCMEnv(t, "proj-a", "proj-a")
	ctl := pushsim.NewControl(e.sim.ControlURL())
	ctx := context.Background()
	msg := func(i int) *messaging.Message {
		return &messaging.Message{Token: e.token(pushsim.FateValid, "proj-a", uint64(i)), Data: map[string]string{"i": "1"}}
	}

	// The token endpoint shares the listener, but a token fetch is not a push.
	e.accessToken(t)
	wantListeners(t, "peak", e.sim.InFlightPeak(), nil)

	const n = 8
	holdInFlight(t, e.sim, pushsim.ListenerFCM, n, func(ctx context.Context, i int) error {
		_, err := e.client.Send(ctx, msg(i))
		return err
	})
	wantListeners(t, "peak", e.sim.InFlightPeak(), map[string]int64{pushsim.ListenerFCM: n})
	peaks, err := ctl.InFlightPeak(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantListeners(t, "peak", peaks, map[string]int64{pushsim.ListenerFCM: n})

	if err := ctl.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	wantListeners(t, "peak", e.sim.InFlightPeak(), nil)

	// A client that keeps at most bound sends in flight is seen to: the
	// gauge lets go of a request before its answer reaches the client, so
	// the next send cannot overlap it.
	const bound, sends = 4, 12
	fcmAddFault(t, e.sim, pushsim.Fault{Kind: pushsim.FaultLatency, Listener: pushsim.ListenerFCM, Latency: pushsim.Duration(200 * time.Millisecond)})
	sem := make(chan struct{}, bound)
	var wg sync.WaitGroup
	for i := range sends {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if _, err := e.client.Send(ctx, msg(100+i)); err != nil {
				t.Errorf("send %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if p := e.sim.InFlightPeak()[pushsim.ListenerFCM]; p < 1 || p > bound {
		t.Errorf("in-flight peak of a client bounded to %d sends = %d", bound, p)
	}
	if got := e.sim.InFlight()[pushsim.ListenerFCM]; got != 0 {
		t.Errorf("%d requests in flight after every send was answered", got)
	}
	fcmWantCount(t, e.sim, pushsim.ListenerFCM, http.StatusOK, "", sends)
}

func TestAPNsInFlightPeak(t *testing.T) {
	sim := pushsimtest.Start(t, pushsim.Config{})
	c, _ := pushsimtest.APNsTokenClient(t, sim, pushsim.Production)
	m := sim.Minter()
	ctx := context.Background()

	const n = 16
	holdInFlight(t, sim, pushsim.ListenerAPNsProduction, n, func(ctx context.Context, i int) error {
		_, err := c.PushWithContext(ctx, alert(m.APNs(pushsim.FateValid, pushsim.Production, topic, uint64(i))))
		return err
	})
	wantListeners(t, "peak", sim.InFlightPeak(), map[string]int64{pushsim.ListenerAPNsProduction: n})

	// Other processes read the peaks from /v1/counts.
	resp, err := http.Get(sim.ControlURL() + "/v1/counts")
	if err != nil {
		t.Fatal(err)
	}
	var counts struct {
		Total        int64            `json:"total"`
		InFlight     map[string]int64 `json:"in_flight"`
		InFlightPeak map[string]int64 `json:"in_flight_peak"`
	}
	err = json.NewDecoder(resp.Body).Decode(&counts)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	wantListeners(t, "peak", counts.InFlightPeak, map[string]int64{pushsim.ListenerAPNsProduction: n})
	wantListeners(t, "in flight", counts.InFlight, nil)
	if counts.Total != 0 {
		// Every push was cancelled before it was answered.
		t.Errorf("total = %d, want 0", counts.Total)
	}
	ctl := pushsim.NewControl(sim.ControlURL())
	if cur, err := ctl.InFlight(ctx); err != nil {
		t.Fatal(err)
	} else {
		wantListeners(t, "in flight", cur, nil)
	}

	sim.Reset()
	wantListeners(t, "peak", sim.InFlightPeak(), nil)
	if resp := push(t, c, alert(m.APNs(pushsim.FateValid, pushsim.Production, topic, 0))); resp.StatusCode != 200 {
		t.Fatalf("push after reset: %d %s", resp.StatusCode, resp.Reason)
	}
	wantListeners(t, "peak", sim.InFlightPeak(), map[string]int64{pushsim.ListenerAPNsProduction: 1})
}
