package apns_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/pushd/pushd/internal/apns"
	"github.com/pushd/pushd/internal/outcome"
	"github.com/pushd/pushd/internal/pushsim"
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
			var failed atomic.Int64
			send := func() {
				r := apns.Request{Token: tokens[next.Add(1)%uint64(len(tokens))], Env: apns.Production, Payload: bench}
				if res := e.sender.Send(ctx, appID, r); res.Outcome != outcome.Delivered {
					failed.Add(1)
				}
			}
			send() // dial outside the timing
			b.ReportAllocs()
			b.ResetTimer()
			if inflight == 1 {
				for b.Loop() {
					send()
				}
			} else {
				b.SetParallelism(max(1, inflight/runtime.GOMAXPROCS(0)))
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						send()
					}
				})
			}
			b.StopTimer()
			if f := failed.Load(); f > 0 {
				b.Fatalf("%d pushes failed", f)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pushes/s")
			b.ReportMetric(float64(e.sim.Connections()[pushsim.ListenerAPNsProduction]), "conns")
		})
	}
}
