package apns_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/apns"
	"github.com/pushd/pushd/internal/logtest"
	"github.com/pushd/pushd/internal/outcome"
	"github.com/pushd/pushd/internal/pushsim"
	"github.com/pushd/pushd/internal/pushsim/pushsimtest"
)

// startWith is start with a Sender configured by set.
func startWith(t testing.TB, simCfg pushsim.Config, set func(*apns.Config)) *env {
	t.Helper()
	sim := pushsimtest.Start(t, simCfg)
	app, k := appFor(t, sim, appID)
	cfg := apns.Config{Apps: []apns.AppConfig{app}}
	set(&cfg)
	s, err := apns.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return &env{sim: sim, key: k, app: app, sender: s}
}

func (e *env) prodConns() int64 { return e.sim.Connections()[pushsim.ListenerAPNsProduction] }

// sendAll sends one push per token at once and returns the results.
func (e *env) sendAll(t testing.TB, toks []string) []apns.Result {
	t.Helper()
	res := make([]apns.Result, len(toks))
	var wg sync.WaitGroup
	for i, tok := range toks {
		wg.Go(func() { res[i] = e.send(t, apns.Request{Token: tok}) })
	}
	wg.Wait()
	return res
}

// TestPoolOpensConnectionsWhenSaturated: 50 pushes held by the server
// against a limit of 10 streams per connection fill one connection, so the
// pool opens more, but never more than MaxConnsPerGateway.
func TestPoolOpensConnectionsWhenSaturated(t *testing.T) {
	const maxConns = 3
	e := startWith(t, pushsim.Config{MaxConcurrentStreams: 10}, func(c *apns.Config) { c.MaxConnsPerGateway = maxConns })
	// The first push dials and learns the server's stream limit.
	want(t, e.send(t, apns.Request{Token: e.token(pushsim.FateValid, pushsim.Production, 0)}), outcome.Delivered, 200, "")
	e.fault(t, pushsim.Fault{Kind: pushsim.FaultLatency, Listener: "apns", Latency: pushsim.Duration(200 * time.Millisecond)})
	toks := make([]string, 50)
	for i := range toks {
		toks[i] = e.token(pushsim.FateValid, pushsim.Production, uint64(1+i))
	}
	begin := time.Now()
	for i, res := range e.sendAll(t, toks) {
		if res.Outcome != outcome.Delivered {
			t.Errorf("push %d: %s %d %q (err %v), want delivered", i, res.Outcome, res.Status, res.Reason, res.Err)
		}
	}
	took := time.Since(begin)
	n := e.prodConns()
	t.Logf("50 pushes at 200ms each, 10 streams per connection: %d connections, %v", n, took)
	if n < 2 || n > maxConns {
		t.Errorf("connections = %d, want 2..%d", n, maxConns)
	}
	// 50 pushes on at most 30 streams take two rounds of 200ms at least:
	// the limit was honoured, not overshot.
	if took < 400*time.Millisecond {
		t.Errorf("50 pushes took %v, less than two rounds: the stream limit was not honoured", took)
	}
	if got := e.sim.Total(pushsim.ListenerAPNsProduction, 200, ""); got != 51 {
		t.Errorf("simulator delivered %d, want 51", got)
	}
}

// TestPoolColdStartOneConnection: pushes that arrive together at a cold
// start share the first connection once it has answered, rather than each
// dialling one of their own: one connection carries them all when the
// server allows that many streams.
func TestPoolColdStartOneConnection(t *testing.T) {
	e := startWith(t, pushsim.Config{}, func(c *apns.Config) { c.MaxConnsPerGateway = 4 })
	toks := make([]string, 100)
	for i := range toks {
		toks[i] = e.token(pushsim.FateValid, pushsim.Production, uint64(i))
	}
	for i, res := range e.sendAll(t, toks) {
		if res.Outcome != outcome.Delivered {
			t.Errorf("push %d: %s %d %q (err %v), want delivered", i, res.Outcome, res.Status, res.Reason, res.Err)
		}
	}
	if n := e.prodConns(); n != 1 {
		t.Errorf("connections = %d for 100 pushes under a limit of 1000 streams, want 1", n)
	}
}

// TestPoolWaitRespectsContext: with every stream of the only allowed
// connection busy, a push waits, and gives up when its context ends,
// without dialling another connection.
func TestPoolWaitRespectsContext(t *testing.T) {
	e := startWith(t, pushsim.Config{MaxConcurrentStreams: 1}, func(c *apns.Config) { c.MaxConnsPerGateway = 1 })
	slow := e.token(pushsim.FateValid, pushsim.Production, 1)
	fast := e.token(pushsim.FateValid, pushsim.Production, 2)
	want(t, e.send(t, apns.Request{Token: fast}), outcome.Delivered, 200, "")
	e.fault(t, pushsim.Fault{Kind: pushsim.FaultLatency, Listener: "apns", Tokens: []string{slow}, Latency: pushsim.Duration(time.Second)})
	done := make(chan apns.Result)
	go func() { done <- e.send(t, apns.Request{Token: slow}) }()
	time.Sleep(200 * time.Millisecond) // the slow push holds the stream
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	res := e.sender.Send(ctx, appID, apns.Request{Token: fast, Payload: payload})
	if res.Outcome != outcome.Retrying || !errors.Is(res.Err, context.DeadlineExceeded) {
		t.Errorf("waiting push: %s (err %v), want Retrying with a deadline", res.Outcome, res.Err)
	}
	want(t, <-done, outcome.Delivered, 200, "")
	want(t, e.send(t, apns.Request{Token: fast}), outcome.Delivered, 200, "")
	if n := e.prodConns(); n != 1 {
		t.Errorf("connections = %d, want 1", n)
	}
}

// TestPoolDropMidStream: the connection drops with pushes in flight on it;
// they are Retrying, and the next pushes go out on a new connection.
func TestPoolDropMidStream(t *testing.T) {
	e := start(t, pushsim.Config{})
	want(t, e.send(t, apns.Request{Token: e.token(pushsim.FateValid, pushsim.Production, 0)}), outcome.Delivered, 200, "")
	held := make([]string, 10)
	for i := range held {
		held[i] = e.token(pushsim.FateValid, pushsim.Production, uint64(1+i))
	}
	e.fault(t, pushsim.Fault{Kind: pushsim.FaultLatency, Listener: "apns", Tokens: held, Latency: pushsim.Duration(2 * time.Second)})
	dropper := e.token(pushsim.FateValid, pushsim.Production, 100)
	e.fault(t, pushsim.Fault{Kind: pushsim.FaultDrop, Listener: "apns", Tokens: []string{dropper}, Limit: 1})

	results := make(chan []apns.Result)
	go func() { results <- e.sendAll(t, held) }()
	// Let the held pushes reach the server, then drop the connection under
	// them.
	time.Sleep(300 * time.Millisecond)
	begin := time.Now()
	res := e.send(t, apns.Request{Token: dropper})
	if res.Outcome != outcome.Retrying || res.Status != 0 || res.Err == nil {
		t.Fatalf("dropping push: %+v, want Retrying with a transport error", res)
	}
	for i, r := range <-results {
		if r.Outcome != outcome.Retrying || r.Err == nil {
			t.Errorf("held push %d: %s %d (err %v), want Retrying", i, r.Outcome, r.Status, r.Err)
		}
	}
	if d := time.Since(begin); d > time.Second {
		t.Errorf("held pushes took %v to fail after the drop", d)
	}
	for i := range 20 {
		want(t, e.send(t, apns.Request{Token: e.token(pushsim.FateValid, pushsim.Production, uint64(200+i))}), outcome.Delivered, 200, "")
	}
	if n := e.prodConns(); n != 2 {
		t.Errorf("connections = %d, want 2 (the dropped one and its replacement)", n)
	}
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// jsonLines decodes the JSON log lines in out.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for l := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	return lines
}

// TestAuthErrorLoggedOncePerMinute: 100 credential refusals within a minute
// are one log line; a minute later the next refusal is another line that
// counts the 99 left out. No line shows a provider or device token.
func TestAuthErrorLoggedOncePerMinute(t *testing.T) {
	var buf logtest.Buffer
	// The clock starts at the real time: provider tokens are issued by
	// it, and pushsim judges their age by its own.
	clock := &fakeClock{t: time.Now()}
	e := startWith(t, pushsim.Config{}, func(c *apns.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&buf, nil))
		c.Now = clock.now
	})
	e.fault(t, pushsim.Fault{Kind: pushsim.FaultReason, Listener: "apns", Status: 403, Reason: "InvalidProviderToken"})
	toks := make([]string, 100)
	for i := range toks {
		toks[i] = e.token(pushsim.FateValid, pushsim.Production, uint64(i))
	}
	for i, res := range e.sendAll(t, toks) {
		if res.Outcome != outcome.AuthError {
			t.Fatalf("push %d: %s, want auth_error", i, res.Outcome)
		}
		clock.add(100 * time.Millisecond) // 10s in all: still the same minute
	}
	lines := jsonLines(t, buf.String())
	if len(lines) != 1 {
		t.Fatalf("%d log lines after 100 auth errors, want 1: %v", len(lines), lines)
	}
	l := lines[0]
	if l["level"] != "ERROR" || l["app"] != appID || l["env"] != apns.Production || l["status"] != 403.0 || l["reason"] != "InvalidProviderToken" || l["suppressed"] != 0.0 {
		t.Errorf("first line = %v", l)
	}

	clock.add(time.Minute)
	want(t, e.send(t, apns.Request{Token: toks[0], Env: apns.Development}), outcome.AuthError, 403, "InvalidProviderToken")
	want(t, e.send(t, apns.Request{Token: toks[1]}), outcome.AuthError, 403, "InvalidProviderToken")
	lines = jsonLines(t, buf.String())
	if len(lines) != 2 {
		t.Fatalf("%d log lines after a minute more, want 2: %v", len(lines), lines)
	}
	if l := lines[1]; l["suppressed"] != 99.0 || l["env"] != apns.Development {
		t.Errorf("second line = %v, want 99 suppressed, development", l)
	}
	text := buf.String()
	t.Log(strings.TrimSpace(text))
	for _, secret := range append([]string{"eyJ", "bearer", e.key.KeyID}, toks...) {
		if strings.Contains(text, secret) {
			t.Errorf("log shows %q", secret)
		}
	}
}
