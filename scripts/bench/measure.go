package main

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// clockTicks is the kernel's USER_HZ, which /proc/PID/stat counts in; it
// is 100 on every Linux architecture Go runs on.
const clockTicks = 100

// cpuSeconds is the user and system CPU time process pid has used.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, field 2, may hold spaces; the rest follows ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	// Fields 14 and 15 (utime, stime), counted from the state (field 3).
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	return (ut + st) / clockTicks, nil
}

// resetPeakRSS starts pid's peak resident set size again from its current
// one (Linux's clear_refs, value 5), so that each workload reports its own
// peak.
func resetPeakRSS(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// peakRSS is pid's peak resident set size in MB (VmHWM).
func peakRSS(pid int) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmHWM", pid)
}

// redisCPU is the CPU seconds the Redis server has used.
func redisCPU(ctx context.Context, rc *redis.Client) (float64, error) {
	info, err := rc.Info(ctx, "cpu").Result()
	if err != nil {
		return 0, err
	}
	var sum float64
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
			f, _ := strconv.ParseFloat(v, 64)
			sum += f
		}
	}
	return sum, nil
}

// outcomes sums pushd's pushd_pushes_total by outcome from its /metrics
// text.
func outcomes(metrics []byte) map[string]int {
	out := make(map[string]int)
	for _, line := range strings.Split(string(metrics), "\n") {
		rest, ok := strings.CutPrefix(line, "pushd_pushes_total{")
		if !ok {
			continue
		}
		labels, val, _ := strings.Cut(rest, "} ")
		_, o, _ := strings.Cut(labels, `outcome="`)
		o, _, _ = strings.Cut(o, `"`)
		n, _ := strconv.ParseFloat(strings.TrimSpace(val), 64)
		out[o] += int(n)
	}
	return out
}

// percentiles are latency percentiles in milliseconds.
type percentiles struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func percentilesOf(ds []time.Duration) percentiles {
	if len(ds) == 0 {
		return percentiles{}
	}
	slices.Sort(ds)
	at := func(p float64) float64 {
		d := ds[min(len(ds)-1, int(math.Ceil(p*float64(len(ds))))-1)]
		return math.Round(float64(d.Microseconds())/10) / 100
	}
	return percentiles{P50: at(0.50), P95: at(0.95), P99: at(0.99), Max: at(1)}
}

func round(f float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(f*p) / p
}

func execOut(ctx context.Context, name string, args ...string) ([]byte, error) {
	return exec.CommandContext(ctx, name, args...).CombinedOutput()
}
