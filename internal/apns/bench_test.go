package apns_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/pushd/pushd/internal/apns"
	"github.com/pushd/pushd/internal/outcome"
	"github.com/pushd/pushd/internal/pushsim"
	"github.com/pushd/pushd/internal/pushsim/pushsimtest"
)

// BenchmarkSend pushes through Sender.Send to pushsim's production gateway
// at 1, 100 and 1000 pushes in flight: 200-byte payloads to 1024 distinct
// tokens, as pushsim's own listener benchmark does. Client and simulator
// share this process's cores, so pushes/s is a floor, and allocs/op counts
// the simulator's allocations with Send's (pushsim's BenchmarkAPNsListener,
// the bare apns2 client against the same listener, is the baseline).
func BenchmarkSend(b *testing.B) {
	bench := []byte(`{"aps":{"alert":{"title":"Ada Lovelace","body":"Are we still on for the engine demo tomorrow? I have the punch cards ready."},"thread-id":"conv-1","sound":"default"},"conv":"conv-1","m":"01234567890"}`)
	for _, inflight := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("inflight=%d", inflight), func(b *testing.B) {
			e := start(b, pushsim.Config{})
			tokens := make([]string, 1024)
			for i := range tokens {
				tokens[i] = e.token(pushsim.FateValid, pushsim.Production, uint64(i))
			}
			ctx := context.Background()
			var next atomic.Uint64
			send := func() bool {
				r := apns.Request{Token: tokens[next.Add(1)%uint64(len(tokens))], Env: apns.Production, Payload: bench}
				return e.sender.Send(ctx, appID, r).Outcome == outcome.Delivered
			}
			send() // dial outside the timing
			pushsimtest.InFlight(b, inflight, "pushes/s", send)
			b.ReportMetric(float64(e.sim.Connections()[pushsim.ListenerAPNsProduction]), "conns")
		})
	}
}
