package pushsim

import (
	"testing"
	"time"
)

// Latency faults add Latency plus a uniform draw from [0, Jitter), and stack
// with the first failing rule; judged without sleeping.
func TestLatencyJitterAndStacking(t *testing.T) {
	var fs faults
	now := time.Now()
	if _, err := fs.add(Fault{Kind: FaultLatency, Latency: Duration(10 * time.Millisecond), Jitter: Duration(50 * time.Millisecond)}, now); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.add(Fault{Kind: FaultUnavailable, Listener: ListenerFCM}, now); err != nil {
		t.Fatal(err)
	}
	seen := map[time.Duration]bool{}
	var sum time.Duration
	const n = 2000
	for range n {
		v := fs.judge(now, ListenerAPNsProduction, "tok")
		if v.fail != nil {
			t.Fatal("an FCM-only fault struck an APNs request")
		}
		if v.delay < 10*time.Millisecond || v.delay >= 60*time.Millisecond {
			t.Fatalf("delay %v outside [10ms, 60ms)", v.delay)
		}
		seen[v.delay] = true
		sum += v.delay
	}
	if len(seen) < n/2 {
		t.Errorf("only %d distinct delays in %d draws: jitter is not random", len(seen), n)
	}
	// The mean of 10ms + U[0,50ms) is 35ms; 2000 draws put it within 2ms
	// with overwhelming probability.
	if mean := sum / n; mean < 33*time.Millisecond || mean > 37*time.Millisecond {
		t.Errorf("mean delay %v, want about 35ms", mean)
	}
	v := fs.judge(now, ListenerFCM, "tok")
	if v.fail == nil || v.fail.Kind != FaultUnavailable || v.delay < 10*time.Millisecond {
		t.Errorf("FCM request: %+v, want the latency and the 503 together", v)
	}
}
