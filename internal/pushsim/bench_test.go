package pushsim_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/sideshow/apns2"

	"github.com/pushd/pushd/internal/pushsim"
	"github.com/pushd/pushd/internal/pushsim/pushsimtest"
)

// BenchmarkAPNsListener drives the production listener with the real apns2
// client (token authentication, one HTTP/2 connection) at several numbers of
// pushes in flight. Client and simulator share this process's cores, so the
// figure is a floor for the listener alone; scripts/bench-pushsim.sh measures
// it from h2load in another process.
func BenchmarkAPNsListener(b *testing.B) {
	for _, inflight := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("inflight=%d", inflight), func(b *testing.B) {
			sim := pushsimtest.Start(b, pushsim.Config{})
			c, _ := pushsimtest.APNsTokenClient(b, sim, pushsim.Production)
			tokens := make([]string, 1024)
			for i := range tokens {
				tokens[i] = sim.Minter().APNs(pushsim.FateValid, pushsim.Production, topic, uint64(i))
			}
			// A 200-byte payload, the size the h2load figure uses.
			payload := []byte(`{"aps":{"alert":{"title":"Ada Lovelace","body":"Are we still on for the engine demo tomorrow? I have the punch cards ready."},"thread-id":"conv-1","sound":"default"},"conv":"conv-1","m":"01234567890"}`)
			var next atomic.Uint64
			pushsimtest.InFlight(b, inflight, "pushes/s", func() bool {
				n := &apns2.Notification{DeviceToken: tokens[next.Add(1)%uint64(len(tokens))], Topic: topic, Payload: payload}
				resp, err := c.Push(n)
				return err == nil && resp.StatusCode == 200
			})
		})
	}
}
