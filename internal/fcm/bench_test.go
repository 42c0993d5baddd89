package fcm_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"firebase.google.com/go/v4/messaging"

	"github.com/pushd/pushd/internal/outcome"
	"github.com/pushd/pushd/internal/pushsim"
	"github.com/pushd/pushd/internal/pushsim/pushsimtest"
)

// BenchmarkSend sends through Sender.Send to pushsim's FCM listener at 1,
// 100 and 1000 messages in flight, to 1024 distinct tokens. Client and
// simulator share this process's cores, and allocs/op counts both.
func BenchmarkSend(b *testing.B) {
	for _, inflight := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("inflight=%d", inflight), func(b *testing.B) {
			e := start(b, pushsim.Config{})
			msgs := make([]*messaging.Message, 1024)
			for i := range msgs {
				msgs[i] = message(e.token(pushsim.FateValid, uint64(i)))
			}
			ctx := context.Background()
			var next atomic.Uint64
			send := func() bool {
				m := msgs[next.Add(1)%uint64(len(msgs))]
				return e.sender.Send(ctx, appID, m).Outcome == outcome.Delivered
			}
			send() // token fetch and dial outside the timing
			pushsimtest.InFlight(b, inflight, "msgs/s", send)
		})
	}
}

// BenchmarkFanOut sends batches of 1 200 messages, as one job's devices:
// Send from a bounded number of goroutines, pushd's way (the dispatcher's
// fan-out), at several bounds, against the SDK's own SendEach (at most 500
// messages a call, 50 goroutines each) over chunks of 500.
func BenchmarkFanOut(b *testing.B) {
	const batch = 1200
	run := func(b *testing.B, e *env, sendBatch func([]*messaging.Message) int) {
		msgs := make([]*messaging.Message, batch)
		for i := range msgs {
			msgs[i] = message(e.token(pushsim.FateValid, uint64(i)))
		}
		sendBatch(msgs[:1]) // token fetch and dial outside the timing
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if ok := sendBatch(msgs); ok != batch {
				b.Fatalf("%d of %d delivered", ok, batch)
			}
		}
		b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "msgs/s")
		b.ReportMetric(float64(e.sim.Connections()[pushsim.ListenerFCM]), "conns")
	}
	// FCM is a network away: with 20 ms of latency per answer, messages in
	// flight, not CPU, set the pace.
	for _, latency := range []time.Duration{0, 20 * time.Millisecond} {
		start := func(b *testing.B) *env {
			e := start(b, pushsim.Config{})
			if latency > 0 {
				e.fault(b, pushsim.Fault{Kind: pushsim.FaultLatency, Listener: pushsim.ListenerFCM, Latency: pushsim.Duration(latency)})
			}
			return e
		}
		for _, bound := range []int{50, 100, 256, 500} {
			b.Run(fmt.Sprintf("latency=%v/pushd/inflight=%d", latency, bound), func(b *testing.B) {
				e := start(b)
				run(b, e, func(msgs []*messaging.Message) int {
					var ok atomic.Int64
					sem := make(chan struct{}, bound)
					var wg sync.WaitGroup
					for _, m := range msgs {
						sem <- struct{}{}
						wg.Go(func() {
							defer func() { <-sem }()
							if e.sender.Send(context.Background(), appID, m).Outcome == outcome.Delivered {
								ok.Add(1)
							}
						})
					}
					wg.Wait()
					return int(ok.Load())
				})
			})
		}
		b.Run(fmt.Sprintf("latency=%v/sdk/chunks=500", latency), func(b *testing.B) {
			e := start(b)
			c, _ := pushsimtest.FCMClient(b, e.sim, project, project)
			run(b, e, func(msgs []*messaging.Message) int {
				ok := 0
				for len(msgs) > 0 {
					n := min(len(msgs), 500)
					br, err := c.Messaging.SendEach(context.Background(), msgs[:n])
					if err != nil {
						b.Fatal(err)
					}
					ok += br.SuccessCount
					msgs = msgs[n:]
				}
				return ok
			})
		})
	}
}
