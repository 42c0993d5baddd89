package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/token"

	"github.com/pushd/pushd/internal/pushsim"
	"github.com/pushd/pushd/internal/pushsim/simclient"
)

func loadCommand() *command {
	return &command{
		name:  "load",
		args:  "[flags]",
		short: "drive an APNs listener with the real apns2 client and report pushes/s",
		long: `
Load pushes --requests notifications with github.com/sideshow/apns2 (token
authentication with a key from the state directory) to valid tokens minted
with --seed, keeping --inflight pushes in flight over --connections HTTP/2
connections, and reports pushes per second and latency percentiles. Run it
against a 'pushsim serve' in another process to measure the listener, or
against anything else that speaks APNs.`,
		flags: func(fs *flag.FlagSet) func(context.Context, *cli) error {
			dir := fs.String("dir", defaultDir, "state `directory` holding the CA and the signing key")
			target := fs.String("url", "https://127.0.0.1:2197", "APNs gateway `URL`")
			env := fs.String("env", "production", "`environment` the tokens are minted for: production or development")
			topic := fs.String("topic", "com.example.chat", "APNs `topic`")
			seed := fs.String("seed", "pushsim", "`seed` the simulator was started with")
			keyID := fs.String("key-id", "", "signing key `id` (default the only key in DIR)")
			requests := fs.Int("requests", 200000, "`count` of pushes")
			inflight := fs.Int("inflight", 1000, "pushes in `flight` at once")
			conns := fs.Int("connections", 1, "HTTP/2 `connections` (one apns2 client each)")
			tokens := fs.Int("tokens", 1000, "distinct device `tokens` to cycle through")
			caPath := fs.String("ca", "", "`file` of the CA to trust (default DIR/ca.pem)")
			asJSON := fs.Bool("json", false, "print the result as one JSON object, for scripts")
			bearer := fs.String("bearer", "", "provider `token` to present instead of signing a new one; APNs refuses a\nnew token for one key within 20 minutes, so runs in a row share one ('pushsim bearer')")
			return func(ctx context.Context, c *cli) error {
				switch {
				case *requests < 1:
					return usageErrorf("--requests %d: want at least 1", *requests)
				case *inflight < 1:
					return usageErrorf("--inflight %d: want at least 1", *inflight)
				case *conns < 1:
					return usageErrorf("--connections %d: want at least 1", *conns)
				case *tokens < 1:
					return usageErrorf("--tokens %d: want at least 1", *tokens)
				}
				u, err := url.Parse(*target)
				if err != nil || u.Scheme != "https" || u.Host == "" {
					return usageErrorf("--url %q: want https://host:port", *target)
				}
				e, err := pushsim.ParseEnv(*env)
				if err != nil {
					return usageErrorf("--env %q: want production or development", *env)
				}
				d := stateDir(*dir)
				key, err := d.pickAPNsKey(*keyID)
				if err != nil {
					return err
				}
				if *caPath == "" {
					*caPath = d.caCertPath()
				}
				caPEM, err := os.ReadFile(*caPath)
				if err != nil {
					return fmt.Errorf("load CA: %w", err)
				}
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(caPEM) {
					return fmt.Errorf("load CA %s: no certificate in it", *caPath)
				}
				return runLoad(ctx, c, loadSpec{
					url: *target, env: e, topic: *topic, seed: *seed, key: key, roots: pool,
					requests: *requests, inflight: *inflight, conns: *conns, tokens: *tokens,
					bearer: *bearer, json: *asJSON,
				})
			}
		},
	}
}

type loadSpec struct {
	url                               string
	env                               pushsim.Env
	topic, seed                       string
	key                               *pushsim.APNsKey
	roots                             *x509.CertPool
	requests, inflight, conns, tokens int
	bearer                            string
	json                              bool
}

func runLoad(ctx context.Context, c *cli, sp loadSpec) error {
	m := pushsim.NewMinter(sp.seed)
	devices := make([]string, sp.tokens)
	for i := range devices {
		devices[i] = m.APNs(pushsim.FateValid, sp.env, sp.topic, uint64(i))
	}
	// One provider token for every connection, as Apple requires of a key.
	tok := &token.Token{AuthKey: sp.key.Key, KeyID: sp.key.KeyID, TeamID: sp.key.TeamID}
	if sp.bearer != "" {
		// apns2 keeps a token it believes fresh; the server judges its age.
		tok.Bearer, tok.IssuedAt = sp.bearer, time.Now().Unix()
	} else if _, err := tok.Generate(); err != nil {
		return fmt.Errorf("sign provider token: %w", err)
	}
	clients := make([]*apns2.Client, sp.conns)
	for i := range clients {
		cl := apns2.NewTokenClient(tok)
		cl.Host = sp.url
		cl.HTTPClient.Transport = simclient.APNsTransport(sp.roots, tls.Certificate{})
		clients[i] = cl
	}
	// A 200-byte payload, as the h2load figure uses.
	payload := []byte(`{"aps":{"alert":{"title":"Ada Lovelace","body":"Are we still on for the engine demo tomorrow? I have the punch cards ready."},"thread-id":"conv-1","sound":"default"},"conv":"conv-1","m":"01234567890"}`)

	var next, failed atomic.Int64
	var firstErr atomic.Value
	latencies := make([][]time.Duration, sp.inflight)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range sp.inflight {
		wg.Go(func() {
			cl := clients[w%len(clients)]
			for {
				i := next.Add(1) - 1
				if i >= int64(sp.requests) || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				resp, err := cl.PushWithContext(ctx, &apns2.Notification{DeviceToken: devices[i%int64(len(devices))], Topic: sp.topic, Payload: payload})
				latencies[w] = append(latencies[w], time.Since(t0))
				if err == nil && resp.StatusCode != 200 {
					err = fmt.Errorf("%d %s", resp.StatusCode, resp.Reason)
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	all := slices.Concat(latencies...)
	slices.Sort(all)
	pct := func(p float64) time.Duration { return all[min(len(all)-1, int(p*float64(len(all))))] }
	if sp.json {
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		b, _ := json.Marshal(map[string]any{
			"pushes": len(all), "failed": failed.Load(), "inflight": sp.inflight, "connections": sp.conns,
			"seconds": elapsed.Seconds(), "pushes_per_s": float64(len(all)) / elapsed.Seconds(),
			"p50_ms": ms(pct(0.50)), "p99_ms": ms(pct(0.99)), "max_ms": ms(all[len(all)-1]),
		})
		fmt.Fprintf(c.stdout, "%s\n", b)
	} else {
		fmt.Fprintf(c.stdout, "apns2 load: %d pushes, %d in flight over %d connection(s), %d bytes each, GOMAXPROCS %d\n",
			len(all), sp.inflight, sp.conns, len(payload), runtime.GOMAXPROCS(0))
		fmt.Fprintf(c.stdout, "  %.0f pushes/s in %v\n", float64(len(all))/elapsed.Seconds(), elapsed.Round(time.Millisecond))
		fmt.Fprintf(c.stdout, "  latency p50 %v  p90 %v  p99 %v  max %v\n", pct(0.50), pct(0.90), pct(0.99), all[len(all)-1])
	}
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("%d of %d pushes failed; first: %s", n, len(all), firstErr.Load())
	}
	if err := ctx.Err(); err != nil {
		return errors.New("interrupted")
	}
	return nil
}
