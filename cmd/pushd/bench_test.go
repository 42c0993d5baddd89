package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pushd/pushd/internal/pushsim"
	"github.com/pushd/pushd/internal/pushsim/pushsimtest"
)

// BenchmarkIdleStart measures how long a job waits on an idle pushd: from
// its enqueue (POST /v1/push) to pushsim's receipt of its one push, after
// pushd has idled 100 ms, with asynq's default task check interval (1 s)
// and pushd's (5 ms) in the same run. Reported: the median and worst
// enqueue→provider time, and Redis's CPU while pushd idles (what the
// polling costs). ns/op counts the idle time too: read the metrics.
func BenchmarkIdleStart(b *testing.B) {
	for _, interval := range []string{"1s", "5ms"} {
		b.Run("task_check_interval="+interval, func(b *testing.B) {
			needRedis(b)
			b.Setenv("PUSHD_WORKER_TASK_CHECK_INTERVAL", interval)
			sim := pushsimtest.Start(b, pushsim.Config{})
			e := startPushd(b, sim, fmt.Sprintf("{driver: sqlite, path: %q}", filepath.Join(b.TempDir(), "pushd.db")))
			tok := sim.Minter().APNs(pushsim.FateValid, pushsim.Production, e2eTopic, 1)
			e.register("iphone-alice", "alice", "apns", tok, "production")

			rc := redis.NewClient(&redis.Options{Addr: redisAddr()})
			defer rc.Close()
			cpu0 := redisCPU(b, rc)
			idle := 2 * time.Second
			time.Sleep(idle)
			idleCPU := (redisCPU(b, rc) - cpu0) / idle.Seconds()

			var waits []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				time.Sleep(100 * time.Millisecond)
				job := map[string]any{"message_id": fmt.Sprintf("idle-%d", i), "conversation_id": "c", "recipients": []string{"alice"}}
				sent := time.Now()
				if st := e.call("POST", "/v1/push", job, nil); st != 202 {
					b.Fatalf("enqueue: %d", st)
				}
				for {
					if r, ok := sim.Receipt(tok); ok && r.Count == int64(i+1) {
						waits = append(waits, r.Last.Sub(sent))
						break
					}
					if time.Since(sent) > 10*time.Second {
						b.Fatalf("job %d not pushed within 10s", i)
					}
					time.Sleep(200 * time.Microsecond)
				}
			}
			b.StopTimer()
			slices.Sort(waits)
			b.ReportMetric(float64(waits[len(waits)/2].Microseconds())/1000, "ms-p50")
			b.ReportMetric(float64(waits[len(waits)-1].Microseconds())/1000, "ms-max")
			b.ReportMetric(idleCPU*100, "redis-cpu-%-idle")
		})
	}
}

// redisCPU is the CPU seconds Redis has used, user and system.
func redisCPU(tb testing.TB, rc *redis.Client) float64 {
	tb.Helper()
	info, err := rc.Info(context.Background(), "cpu").Result()
	if err != nil {
		tb.Fatal(err)
	}
	var sum float64
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				tb.Fatalf("redis %s: %v", k, err)
			}
			sum += f
		}
	}
	return sum
}
