package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/pushd/pushd/internal/pushsim"
	"github.com/pushd/pushd/scripts/internal/stack"
)

// reference is one run of a bare sender against pushsim.
type reference struct {
	Reference  string  `json:"reference"`
	When       string  `json:"when"`
	InFlight   int     `json:"inflight,omitempty"`
	Pushes     int     `json:"pushes"`
	PushesPerS float64 `json:"pushes_per_s"`
	P50ms      float64 `json:"p50_ms,omitempty"`
	P99ms      float64 `json:"p99_ms,omitempty"`
	Skipped    string  `json:"skipped,omitempty"`
}

// references runs the bare apns2 client (pushsim load, 1000 and 256 pushes
// in flight on one connection) and h2load against sim's production
// gateway, and returns their pushes/s by name.
func references(ctx context.Context, o options, simBin string, sim *stack.Sim, when string, emit func(any)) (map[string]float64, error) {
	out := make(map[string]float64)
	if o.references == 0 {
		return out, nil
	}
	ctl := pushsim.NewControl(sim.ControlURL())
	for _, inflight := range []int{1000, 256} {
		var stdout bytes.Buffer
		c := exec.CommandContext(ctx, simBin, "load", "--json", "--dir", filepath.Join(sim.Dir, "pushsim"), "--seed", seed, "--topic", topic,
			"--url", "https://"+sim.APNsProduction, "--requests", strconv.Itoa(o.references), "--inflight", strconv.Itoa(inflight), "--connections", "1")
		c.Stdout, c.Stderr = &stdout, os.Stderr
		if err := c.Run(); err != nil {
			return nil, fmt.Errorf("pushsim load --inflight %d: %w", inflight, err)
		}
		var r struct {
			Pushes     int     `json:"pushes"`
			PushesPerS float64 `json:"pushes_per_s"`
			P50        float64 `json:"p50_ms"`
			P99        float64 `json:"p99_ms"`
		}
		if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("pushsim load: %w: %s", err, stdout.Bytes())
		}
		name := fmt.Sprintf("load_%d", inflight)
		out[name] = r.PushesPerS
		emit(reference{Reference: "pushsim load (apns2, 1 connection)", When: when, InFlight: inflight, Pushes: r.Pushes,
			PushesPerS: round(r.PushesPerS, 0), P50ms: r.P50, P99ms: r.P99})
	}
	if o.h2load {
		rate, err := h2load(ctx, o, simBin, sim)
		ref := reference{Reference: "h2load (4 connections × 100 streams)", When: when, Pushes: o.references, PushesPerS: round(rate, 0)}
		if err != nil {
			ref.Skipped = err.Error()
		} else {
			out["h2load"] = rate
		}
		emit(ref)
	}
	return out, ctl.Reset(ctx)
}

var h2loadRate = regexp.MustCompile(`finished in [^,]+, ([0-9.]+) req/s`)
var h2loadStatus = regexp.MustCompile(`status codes: ([0-9]+) 2xx, 0 3xx, 0 4xx, 0 5xx`)

// h2load is the raw limit of pushsim's listener: the C client, no Go
// client in the way.
func h2load(ctx context.Context, o options, simBin string, sim *stack.Sim) (float64, error) {
	if _, err := exec.LookPath("h2load"); err != nil {
		progress("installing nghttp2-client for h2load")
		install := exec.CommandContext(ctx, "bash", "-c", `SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nghttp2-client`)
		install.Stdout, install.Stderr = os.Stderr, os.Stderr
		if err := install.Run(); err != nil {
			return 0, fmt.Errorf("h2load is not installed and apt-get install nghttp2-client failed: %v", err)
		}
	}
	dir := filepath.Join(o.work, "h2load")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, err
	}
	var uris bytes.Buffer
	m := pushsim.NewMinter(seed)
	for i := range 1000 {
		fmt.Fprintf(&uris, "https://%s/3/device/%s\n", sim.APNsProduction, m.APNs(pushsim.FateValid, pushsim.Production, topic, uint64(i)))
	}
	payload := `{"aps":{"alert":{"title":"Ada Lovelace","body":"Are we still on for the engine demo tomorrow? I have the punch cards ready."},"thread-id":"conv-1","sound":"default"},"conv":"conv-1","m":"01234567890"}`
	if err := os.WriteFile(filepath.Join(dir, "uris"), uris.Bytes(), 0o600); err != nil {
		return 0, err
	}
	if err := os.WriteFile(filepath.Join(dir, "payload.json"), []byte(payload), 0o600); err != nil {
		return 0, err
	}
	bearer, err := exec.CommandContext(ctx, simBin, "bearer", "--dir", filepath.Join(sim.Dir, "pushsim")).Output()
	if err != nil {
		return 0, fmt.Errorf("pushsim bearer: %w", err)
	}
	res, err := exec.CommandContext(ctx, "h2load", "-n", strconv.Itoa(o.references), "-c", "4", "-m", "100", "-t", "1",
		"-H", "authorization: bearer "+string(bytes.TrimSpace(bearer)), "-H", "apns-topic: "+topic, "-H", "apns-push-type: alert",
		"-d", filepath.Join(dir, "payload.json"), "-i", filepath.Join(dir, "uris")).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("h2load: %w: %s", err, res)
	}
	if !h2loadStatus.Match(res) {
		return 0, fmt.Errorf("h2load: some requests were refused:\n%s", res)
	}
	mm := h2loadRate.FindSubmatch(res)
	if mm == nil {
		return 0, fmt.Errorf("h2load: no rate in its output:\n%s", res)
	}
	return strconv.ParseFloat(string(mm[1]), 64)
}
