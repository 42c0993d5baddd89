package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pushd/pushd/internal/installations"
	"github.com/pushd/pushd/internal/pushsim"
	"github.com/pushd/pushd/internal/pushsim/pushsimtest"
	"github.com/pushd/pushd/internal/storage"
	"github.com/pushd/pushd/internal/storage/storagetest"
	"github.com/pushd/pushd/internal/testenv"
)

// The end-to-end tests run the real pushd (config file, fx wiring, HTTP API,
// asynq workers on a real Redis, SQLite or PostgreSQL) against pushsim, and
// check what reached the simulated devices through pushsim's control API.

const (
	e2eTopic   = "com.example.chat"
	e2eProject = "e2e-project"
	e2eToken   = "e2e-api-token-0123456789"
	// e2eRedisDB keeps these tests' tasks apart from other packages' (pushjob
	// uses 14).
	e2eRedisDB = 13
)

func redisAddr() string { return testenv.RedisAddr() }

// needRedis flushes the tests' Redis database, or skips (fails in CI) when
// there is no Redis.
func needRedis(t testing.TB) {
	t.Helper()
	needRedisDB(t, e2eRedisDB)
}

// needRedisDB is needRedis for Redis database db.
func needRedisDB(t testing.TB, db int) {
	t.Helper()
	testenv.Redis(t, db)
}

type e2e struct {
	t    testing.TB
	sim  *pushsim.Sim
	base string
	hc   *http.Client
	// stop sends pushd the equivalent of SIGTERM and returns its exit
	// status once it has stopped.
	stop func() int
	// config is the config file pushd runs with.
	config string
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startPushd writes credentials and a config file for sim, runs
// `pushd serve` in-process until the test ends, and waits for /readyz.
func startPushd(t testing.TB, sim *pushsim.Sim, database string) *e2e {
	t.Helper()
	return startPushdWith(t, sim, database, p8Creds(t, sim))
}

// p8Creds returns a startPushdWith creds function that gives the app a new
// signing key of sim's (.p8).
func p8Creds(t testing.TB, sim *pushsim.Sim) func(certs string) string {
	return func(certs string) string {
		key, err := sim.NewAPNsKey("", "")
		if err != nil {
			t.Fatal(err)
		}
		p8, _ := key.P8()
		pushsimtest.WriteFile(t, certs, "AuthKey_"+key.KeyID+".p8", p8)
		return fmt.Sprintf("key_file: certs/default/AuthKey_%s.p8\n      key_id: %s\n      team_id: %s\n      topic: %s", key.KeyID, key.KeyID, key.TeamID, e2eTopic)
	}
}

// startPushdWith is startPushd with the app's APNs credentials given by
// creds, which writes them into certs and returns their config keys.
func startPushdWith(t testing.TB, sim *pushsim.Sim, database string, creds func(certs string) string) *e2e {
	t.Helper()
	listen := freeAddr(t)
	cfgPath := writeConfig(t, sim, listen, e2eRedisDB, database, creds)

	ctx, cancel := context.WithCancel(context.Background())
	var stderr bytes.Buffer
	var mu sync.Mutex
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--config", cfgPath}, io.Discard, &lockedWriter{&mu, &stderr})
	}()
	var once sync.Once
	exit := -1
	stop := func() int {
		once.Do(func() {
			cancel()
			select {
			case exit = <-done:
				if exit != 0 {
					mu.Lock()
					t.Errorf("pushd serve exited %d:\n%s", exit, stderr.String())
					mu.Unlock()
				}
			case <-time.After(30 * time.Second):
				t.Error("pushd serve did not stop within 30s of SIGTERM")
			}
		})
		return exit
	}
	t.Cleanup(func() { stop() })
	e := &e2e{t: t, sim: sim, base: "http://" + listen, hc: &http.Client{Timeout: 10 * time.Second}, stop: stop, config: cfgPath}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := e.hc.Get(e.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return e
			}
		}
		select {
		case code := <-done:
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("pushd serve exited %d before it was ready:\n%s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("pushd not ready after 30s:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// writeConfig writes credentials and a config file for sim and Redis
// database redisDB into a new directory and returns the file's path.
func writeConfig(t testing.TB, sim *pushsim.Sim, listen string, redisDB int, database string, creds func(certs string) string) string {
	t.Helper()
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs", "default")
	os.MkdirAll(certs, 0o700)
	apnsCreds := creds(certs)
	sa, err := sim.NewServiceAccount(e2eProject)
	if err != nil {
		t.Fatal(err)
	}
	saJSON, _ := sa.JSON(sim.TokenURL())
	pushsimtest.WriteFile(t, certs, "fcm-service-account.json", saJSON)
	pushsimtest.WriteFile(t, certs, "pushsim-ca.pem", sim.CA().CertPEM())

	cfg := fmt.Sprintf(`listen: %s
api_tokens: [%s]
redis: {addr: %q, db: %d}
database: %s
worker: {concurrency: 4, shutdown_timeout: 5s}
apps:
  - id: default
    apns:
      %s
      production_url: %s
      development_url: %s
      ca_file: certs/default/pushsim-ca.pem
    fcm:
      credentials_file: certs/default/fcm-service-account.json
      endpoint: %s
      ca_file: certs/default/pushsim-ca.pem
    defaults:
      title: "${fromClientId}"
      body: "New message in ${convId}"
`, listen, e2eToken, redisAddr(), redisDB, database, apnsCreds,
		sim.APNsURL(pushsim.Production), sim.APNsURL(pushsim.Development), sim.FCMEndpoint())
	return pushsimtest.WriteFile(t, dir, "pushd.yaml", []byte(cfg))
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// call sends a JSON request with the API token and decodes the answer.
// call sends body as JSON and decodes the answer into out: JSON, or the
// text as it is when out is a *string.
func (e *e2e) call(method, path string, body any, out any) int {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.base+path, rd)
	req.Header.Set("Authorization", "Bearer "+e2eToken)
	resp, err := e.hc.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if text, ok := out.(*string); ok {
		// A text answer, such as /metrics.
		*text = string(b)
		return resp.StatusCode
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

func (e *e2e) register(id, client, provider, token, env string) {
	e.t.Helper()
	body := map[string]any{"client_id": client, "provider": provider, "token": token}
	if env != "" {
		body["apns_env"] = env
	}
	var got map[string]any
	if st := e.call("PUT", "/v1/installations/"+id, body, &got); st != 200 {
		e.t.Fatalf("register %s: %d %v", id, st, got)
	}
}

type traceRow struct {
	InstallationID string `json:"installation_id"`
	ClientID       string `json:"client_id"`
	Outcome        string `json:"outcome"`
	Reason         string `json:"reason"`
}

// waitTrace polls the message's trace until want rows are there and none
// is still to retry.
func (e *e2e) waitTrace(messageID string, want int) map[string]string {
	e.t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		var tr struct {
			Deliveries []traceRow `json:"deliveries"`
		}
		e.call("GET", "/v1/messages/"+messageID, nil, &tr)
		settled := len(tr.Deliveries) >= want
		for _, d := range tr.Deliveries {
			if d.Outcome == "retrying" {
				settled = false
			}
		}
		if settled || time.Now().After(deadline) {
			out := make(map[string]string)
			for _, d := range tr.Deliveries {
				k := d.ClientID
				if d.InstallationID != "" {
					k += "/" + d.InstallationID
				}
				out[k] = d.Outcome
			}
			if !settled {
				e.t.Fatalf("trace of %s after 45s: %v, want %d settled rows", messageID, out, want)
			}
			return out
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestEndToEnd(t *testing.T) {
	needRedis(t)
	for _, db := range []struct {
		name     string
		database func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string {
			return fmt.Sprintf("{driver: sqlite, path: %q}", filepath.Join(t.TempDir(), "pushd.db"))
		}},
		{"postgres", func(t *testing.T) string {
			return fmt.Sprintf("{driver: postgres, dsn: %q}", storagetest.PostgresSchemaDSN(t))
		}},
	} {
		t.Run(db.name, func(t *testing.T) {
			needRedis(t)
			sim := pushsimtest.Start(t, pushsim.Config{})
			e := startPushd(t, sim, db.database(t))
			endToEnd(t, e)
		})
	}
}

func endToEnd(t *testing.T, e *e2e) {
	m := e.sim.Minter()
	prod := m.APNs(pushsim.FateValid, pushsim.Production, e2eTopic, 1)
	dev := m.APNs(pushsim.FateValid, pushsim.Development, e2eTopic, 2)
	muted := m.APNs(pushsim.FateValid, pushsim.Production, e2eTopic, 3)
	dead := m.APNs(pushsim.FateUnregistered, pushsim.Production, e2eTopic, 4)
	android := m.FCM(pushsim.FateValid, e2eProject, 1)
	mentioned := m.FCM(pushsim.FateValid, e2eProject, 2)

	e.register("iphone-alice", "alice", "apns", prod, "production")
	e.register("iphone-bob", "bob", "apns", dev, "development")
	e.register("android-carol", "carol", "fcm", android, "")
	e.register("iphone-dave", "dave", "apns", muted, "production")
	e.register("android-erin", "erin", "fcm", mentioned, "")
	e.register("iphone-hank", "hank", "apns", dead, "production")
	// gina has no device.

	if st := e.call("PUT", "/v1/mutes/dave/conv-1", map[string]any{}, nil); st != 200 {
		t.Fatalf("mute dave: %d", st)
	}
	if st := e.call("PUT", "/v1/mutes/erin/conv-1", map[string]any{"allow_mentions": true}, nil); st != 200 {
		t.Fatalf("mute erin: %d", st)
	}

	job := map[string]any{
		"message_id": "msg-1", "conversation_id": "conv-1", "from_client_id": "zoe",
		"recipients": []string{"alice", "bob", "carol", "dave", "erin", "gina", "hank"},
		"mentions":   []string{"erin"},
	}
	var accepted map[string]string
	if st := e.call("POST", "/v1/push", job, &accepted); st != 202 || accepted["task_id"] == "" {
		t.Fatalf("POST /v1/push: %d %v", st, accepted)
	}
	got := e.waitTrace("msg-1", 7)
	want := map[string]string{
		"alice/iphone-alice": "delivered", "bob/iphone-bob": "delivered", "carol/android-carol": "delivered",
		"erin/android-erin": "delivered", "hank/iphone-hank": "invalid_token", "dave": "muted", "gina": "no_device",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("trace %s = %q, want %q (trace %v)", k, got[k], v, got)
		}
	}

	// What reached the simulated devices.
	for tok, listener := range map[string]string{prod: "apns-production", dev: "apns-development", android: "fcm", mentioned: "fcm"} {
		rc, ok := e.sim.Receipt(tok)
		if !ok || rc.Count != 1 || rc.Listener != listener {
			t.Errorf("receipt of %s…: %+v %v, want one push at %s", tok[:12], rc, ok, listener)
		}
	}
	for _, tok := range []string{muted, dead} {
		if _, ok := e.sim.Receipt(tok); ok {
			t.Errorf("token %s… received a push", tok[:12])
		}
	}
	rc, _ := e.sim.Receipt(prod)
	var aps struct {
		APS struct {
			Alert    struct{ Title, Body string } `json:"alert"`
			ThreadID string                       `json:"thread-id"`
		} `json:"aps"`
	}
	if err := json.Unmarshal(rc.Payload, &aps); err != nil || aps.APS.Alert.Title != "zoe" || aps.APS.Alert.Body != "New message in conv-1" || aps.APS.ThreadID != "conv-1" {
		t.Errorf("APNs payload %s: want title zoe, body from the template, thread-id conv-1", rc.Payload)
	}
	if rc.Headers["apns-collapse-id"] != "msg-1" || rc.Headers["apns-topic"] != e2eTopic {
		t.Errorf("APNs headers %v: want collapse id msg-1 and topic %s", rc.Headers, e2eTopic)
	}
	fc, _ := e.sim.Receipt(android)
	var msg struct {
		Notification struct{ Title, Body string } `json:"notification"`
		Android      struct {
			Priority     string `json:"priority"`
			Notification struct {
				Tag string `json:"tag"`
			} `json:"notification"`
		} `json:"android"`
	}
	// The tag is the message id: a duplicate after a crash replaces the
	// first notification instead of stacking beside it.
	if err := json.Unmarshal(fc.Payload, &msg); err != nil || msg.Notification.Title != "zoe" || msg.Android.Notification.Tag != "msg-1" || msg.Android.Priority != "high" {
		t.Errorf("FCM message %s: want title zoe, tag msg-1, priority high", fc.Payload)
	}

	// The dead token is marked invalid in the registry.
	var list struct {
		Installations []struct {
			ID            string `json:"installation_id"`
			Valid         bool   `json:"valid"`
			InvalidReason string `json:"invalid_reason"`
		} `json:"installations"`
	}
	e.call("GET", "/v1/installations?client_id=hank", nil, &list)
	if len(list.Installations) != 1 || list.Installations[0].Valid || list.Installations[0].InvalidReason != "Unregistered" {
		t.Errorf("hank's installations: %+v, want one, invalid for Unregistered", list.Installations)
	}

	// The same message again is refused; a forced message reaches dave.
	if st := e.call("POST", "/v1/push", job, nil); st != 409 {
		t.Errorf("same message again: %d, want 409", st)
	}
	forced := map[string]any{"message_id": "msg-2", "conversation_id": "conv-1", "recipients": []string{"dave"}, "force": true}
	if st := e.call("POST", "/v1/push", forced, nil); st != 202 {
		t.Fatalf("forced push: %d", st)
	}
	if got := e.waitTrace("msg-2", 1); got["dave/iphone-dave"] != "delivered" {
		t.Errorf("forced push trace %v, want dave delivered", got)
	}
	if rc, ok := e.sim.Receipt(muted); !ok || rc.Count != 1 {
		t.Errorf("forced push receipt %+v %v, want one", rc, ok)
	}
}

// A retry re-sends only to the devices that have not accepted the message:
// pushsim answers 503 for some devices a few times, and in the end every
// device has the message exactly once.
func TestRetryDeliversExactlyOnce(t *testing.T) {
	needRedis(t)
	sim := pushsimtest.Start(t, pushsim.Config{})
	e := startPushd(t, sim, fmt.Sprintf("{driver: sqlite, path: %q}", filepath.Join(t.TempDir(), "pushd.db")))
	m := sim.Minter()
	var recipients, flaky, tokens []string
	for i := range 10 {
		client := fmt.Sprintf("user-%d", i)
		recipients = append(recipients, client)
		var tok string
		if i%2 == 0 {
			tok = m.APNs(pushsim.FateValid, pushsim.Production, e2eTopic, uint64(i))
			e.register("dev-"+client, client, "apns", tok, "production")
		} else {
			tok = m.FCM(pushsim.FateValid, e2eProject, uint64(i))
			e.register("dev-"+client, client, "fcm", tok, "")
		}
		tokens = append(tokens, tok)
		if i%2 == 0 && i < 8 {
			flaky = append(flaky, tok)
		}
	}
	// Four iPhones meet 503 twice each between them; APNs is not retried
	// inside a send, so pushd's own retries are what deliver them.
	if _, err := sim.AddFault(pushsim.Fault{Kind: pushsim.FaultUnavailable, Listener: "apns", Tokens: flaky, Limit: 8, RetryAfter: 1}); err != nil {
		t.Fatal(err)
	}
	job := map[string]any{"message_id": "retry-1", "conversation_id": "conv-r", "recipients": recipients}
	if st := e.call("POST", "/v1/push", job, nil); st != 202 {
		t.Fatalf("push: %d", st)
	}
	// Once the trace has settled every attempt is over: no later push can
	// still arrive.
	got := e.waitTrace("retry-1", 10)
	for _, c := range recipients {
		if got[c+"/dev-"+c] != "delivered" {
			t.Errorf("trace %s: %q, want delivered", c, got[c+"/dev-"+c])
		}
	}
	for i, tok := range tokens {
		rc, ok := sim.Receipt(tok)
		if !ok || rc.Count != 1 {
			t.Errorf("device %d: receipt %+v %v, want exactly one push", i, rc, ok)
		}
	}
	if n := sim.Total("apns-production", 503, ""); n != 8 {
		t.Errorf("APNs answered 503 %d times, want 8: the retries were not exercised", n)
	}
}

// SIGTERM lets the jobs in flight finish: pushes already on their way are
// answered and recorded before pushd exits.
func TestShutdownDrainsJobsInFlight(t *testing.T) {
	needRedis(t)
	sim := pushsimtest.Start(t, pushsim.Config{})
	dbPath := filepath.Join(t.TempDir(), "pushd.db")
	e := startPushd(t, sim, fmt.Sprintf("{driver: sqlite, path: %q}", dbPath))
	m := sim.Minter()
	var recipients, tokens []string
	for i := range 4 {
		client := fmt.Sprintf("user-%d", i)
		tok := m.APNs(pushsim.FateValid, pushsim.Production, e2eTopic, uint64(i))
		e.register("dev-"+client, client, "apns", tok, "production")
		recipients, tokens = append(recipients, client), append(tokens, tok)
	}
	f, err := sim.AddFault(pushsim.Fault{Kind: pushsim.FaultLatency, Latency: pushsim.Duration(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	job := map[string]any{"message_id": "drain-1", "conversation_id": "conv-d", "recipients": recipients}
	if st := e.call("POST", "/v1/push", job, nil); st != 202 {
		t.Fatalf("push: %d", st)
	}
	// Stop once the pushes are at the gateway, held by the latency.
	deadline := time.Now().Add(30 * time.Second)
	for sim.Faults()[0].Hits < int64(len(tokens)) {
		if time.Now().After(deadline) {
			t.Fatalf("fault %s: the pushes never reached the gateway", f.ID)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code := e.stop(); code != 0 {
		t.Fatalf("pushd exited %d", code)
	}
	for i, tok := range tokens {
		if rc, ok := sim.Receipt(tok); !ok || rc.Count != 1 {
			t.Errorf("device %d: receipt %+v %v, want the push in flight delivered", i, rc, ok)
		}
	}
	db, err := storage.Open(context.Background(), storage.Config{Driver: "sqlite", Path: dbPath})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	trace, err := installations.NewDeliveries(db).Trace(context.Background(), "default", "drain-1")
	if err != nil {
		t.Fatal(err)
	}
	delivered := 0
	for _, d := range trace {
		if d.Outcome == "delivered" {
			delivered++
		}
	}
	if delivered != len(tokens) {
		t.Errorf("after shutdown the trace records %d of %d deliveries: %+v", delivered, len(tokens), trace)
	}
}

// pushd send enqueues a job from flags, as an operator tries a device.
func TestSendCommand(t *testing.T) {
	needRedis(t)
	sim := pushsimtest.Start(t, pushsim.Config{})
	e := startPushd(t, sim, fmt.Sprintf("{driver: sqlite, path: %q}", filepath.Join(t.TempDir(), "pushd.db")))
	tok := sim.Minter().APNs(pushsim.FateValid, pushsim.Development, e2eTopic, 1)
	e.register("iphone-ada", "ada", "apns", tok, "development")
	code, out, errOut := runCLI(t, "send", "--config", e.config, "--to", "ada", "--message-id", "send-1", "--title", "Hello", "--body", "from pushd send")
	if code != 0 || !strings.Contains(out, "send-1") {
		t.Fatalf("pushd send: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if got := e.waitTrace("send-1", 1); got["ada/iphone-ada"] != "delivered" {
		t.Fatalf("trace %v, want ada delivered", got)
	}
	rc, _ := sim.Receipt(tok)
	if !strings.Contains(string(rc.Payload), `"title":"Hello"`) || !strings.Contains(string(rc.Payload), "from pushd send") {
		t.Errorf("payload %s, want the flags' title and body", rc.Payload)
	}
	// The same message id again is refused.
	if code, _, errOut := runCLI(t, "send", "--config", e.config, "--to", "ada", "--message-id", "send-1"); code != 1 || !strings.Contains(errOut, "already enqueued") {
		t.Errorf("second send: exit %d, stderr %q", code, errOut)
	}
}

// A development token registered as production, and one registered with no
// environment, are refused by the production gateway, delivered by the
// development one, and corrected in the registry: the next message goes
// straight to development.
func TestAPNsEnvironmentSelfCorrects(t *testing.T) {
	needRedis(t)
	sim := pushsimtest.Start(t, pushsim.Config{})
	e := startPushd(t, sim, fmt.Sprintf("{driver: sqlite, path: %q}", filepath.Join(t.TempDir(), "pushd.db")))
	m := sim.Minter()
	wrong := m.APNs(pushsim.FateValid, pushsim.Development, e2eTopic, 1)
	unset := m.APNs(pushsim.FateValid, pushsim.Development, e2eTopic, 2)
	e.register("iphone-ada", "ada", "apns", wrong, "production")
	e.register("iphone-bo", "bo", "apns", unset, "")

	job := map[string]any{"message_id": "env-1", "conversation_id": "conv-e", "recipients": []string{"ada", "bo"}}
	if st := e.call("POST", "/v1/push", job, nil); st != 202 {
		t.Fatalf("push: %d", st)
	}
	got := e.waitTrace("env-1", 2)
	for _, k := range []string{"ada/iphone-ada", "bo/iphone-bo"} {
		if got[k] != "env_corrected" {
			t.Errorf("trace %s = %q, want env_corrected (trace %v)", k, got[k], got)
		}
	}
	for _, tok := range []string{wrong, unset} {
		if rc, ok := sim.Receipt(tok); !ok || rc.Count != 1 || rc.Listener != "apns-development" {
			t.Errorf("receipt of %s…: %+v %v, want one push at apns-development", tok[:12], rc, ok)
		}
	}
	for _, client := range []string{"ada", "bo"} {
		var list struct {
			Installations []struct {
				ID      string `json:"installation_id"`
				APNsEnv string `json:"apns_env"`
				Valid   bool   `json:"valid"`
			} `json:"installations"`
		}
		e.call("GET", "/v1/installations?client_id="+client, nil, &list)
		if len(list.Installations) != 1 || list.Installations[0].APNsEnv != "development" || !list.Installations[0].Valid {
			t.Errorf("%s's installations: %+v, want one, valid, apns_env development", client, list.Installations)
		}
	}

	// The next message goes straight to development: production refused
	// each token once, on the first message only.
	job = map[string]any{"message_id": "env-2", "conversation_id": "conv-e", "recipients": []string{"ada", "bo"}}
	if st := e.call("POST", "/v1/push", job, nil); st != 202 {
		t.Fatalf("second push: %d", st)
	}
	got = e.waitTrace("env-2", 2)
	for _, k := range []string{"ada/iphone-ada", "bo/iphone-bo"} {
		if got[k] != "delivered" {
			t.Errorf("second message: trace %s = %q, want delivered (trace %v)", k, got[k], got)
		}
	}
	for _, tok := range []string{wrong, unset} {
		if rc, ok := sim.Receipt(tok); !ok || rc.Count != 2 || rc.Listener != "apns-development" {
			t.Errorf("receipt of %s… after two messages: %+v %v, want two pushes at apns-development", tok[:12], rc, ok)
		}
	}
	if n := sim.Total("apns-production", 400, "BadDeviceToken"); n != 2 {
		t.Errorf("production answered BadDeviceToken %d times, want 2 (once per token, first message only)", n)
	}
	if n := sim.Total("apns-production", 200, ""); n != 0 {
		t.Errorf("production accepted %d pushes of development tokens", n)
	}
}

// An app on an APNs certificate: one universal .p12 (modern format, its
// password from the environment) serves both gateways. The config names no
// topic: the certificate's bundle id is the app's, VoIP pushes included.
func TestCertificateAuthentication(t *testing.T) {
	needRedis(t)
	sim := pushsimtest.Start(t, pushsim.Config{})
	t.Setenv("PUSHD_TEST_P12_PASSWORD", "s3cret-p12")
	e := startPushdWith(t, sim, fmt.Sprintf("{driver: sqlite, path: %q}", filepath.Join(t.TempDir(), "pushd.db")), func(certs string) string {
		cc, err := sim.CA().IssueAPNsCert(pushsim.ClientCertRequest{Kind: pushsim.CertUniversal, BundleID: e2eTopic})
		if err != nil {
			t.Fatal(err)
		}
		p12, err := cc.P12("s3cret-p12", false)
		if err != nil {
			t.Fatal(err)
		}
		pushsimtest.WriteFile(t, certs, "apns-universal.p12", p12)
		return `certificate: {file: certs/default/apns-universal.p12, password: "${PUSHD_TEST_P12_PASSWORD}"}`
	})
	m := sim.Minter()
	prod := m.APNs(pushsim.FateValid, pushsim.Production, e2eTopic, 1)
	dev := m.APNs(pushsim.FateValid, pushsim.Development, e2eTopic, 2)
	voip := m.APNs(pushsim.FateValid, pushsim.Production, e2eTopic+".voip", 3)
	e.register("iphone-ann", "ann", "apns", prod, "production")
	e.register("iphone-bea", "bea", "apns", dev, "development")
	e.register("iphone-cal", "cal", "apns", voip, "production")
	job := map[string]any{"message_id": "cert-1", "conversation_id": "conv-c", "recipients": []string{"ann", "bea"}}
	call := map[string]any{"message_id": "cert-call-1", "conversation_id": "conv-c", "recipients": []string{"cal"},
		"push": map[string]any{"ios": map[string]any{"push_type": "voip"}}}
	for _, j := range []map[string]any{job, call} {
		if st := e.call("POST", "/v1/push", j, nil); st != 202 {
			t.Fatalf("push %v: %d", j["message_id"], st)
		}
	}
	got := e.waitTrace("cert-1", 2)
	if got["ann/iphone-ann"] != "delivered" || got["bea/iphone-bea"] != "delivered" {
		t.Errorf("trace %v, want both delivered", got)
	}
	if got := e.waitTrace("cert-call-1", 1); got["cal/iphone-cal"] != "delivered" {
		t.Errorf("VoIP trace %v, want delivered to the certificate's .voip topic", got)
	}
	if rc, _ := sim.Receipt(voip); rc.Headers["apns-topic"] != e2eTopic+".voip" {
		t.Errorf("VoIP apns-topic %q, want %s.voip", rc.Headers["apns-topic"], e2eTopic)
	}
	for tok, listener := range map[string]string{prod: "apns-production", dev: "apns-development"} {
		if rc, ok := sim.Receipt(tok); !ok || rc.Count != 1 || rc.Listener != listener {
			t.Errorf("receipt %+v %v, want one push at %s", rc, ok, listener)
		}
	}
}

// VoIP and background pushes reach Apple with the headers Apple requires:
// the .voip topic and push type, and for a silent push priority 5 and
// content-available.
func TestAPNsPushTypes(t *testing.T) {
	needRedis(t)
	sim := pushsimtest.Start(t, pushsim.Config{})
	e := startPushd(t, sim, fmt.Sprintf("{driver: sqlite, path: %q}", filepath.Join(t.TempDir(), "pushd.db")))
	m := sim.Minter()
	voip := m.APNs(pushsim.FateValid, pushsim.Production, e2eTopic+".voip", 1)
	alert := m.APNs(pushsim.FateValid, pushsim.Production, e2eTopic, 2)
	e.register("iphone-voip", "vic", "apns", voip, "production")
	e.register("iphone-alert", "amy", "apns", alert, "production")

	call := map[string]any{"message_id": "call-1", "conversation_id": "conv-v", "recipients": []string{"vic"},
		"push": map[string]any{"ios": map[string]any{"push_type": "voip"}}}
	silent := map[string]any{"message_id": "sync-1", "conversation_id": "conv-v", "recipients": []string{"amy"},
		"push": map[string]any{"ios": map[string]any{"push_type": "background"}, "data": map[string]any{"sync": "inbox"}}}
	for _, job := range []map[string]any{call, silent} {
		if st := e.call("POST", "/v1/push", job, nil); st != 202 {
			t.Fatalf("push %v: %d", job["message_id"], st)
		}
	}
	if got := e.waitTrace("call-1", 1); got["vic/iphone-voip"] != "delivered" {
		t.Fatalf("VoIP trace %v", got)
	}
	if got := e.waitTrace("sync-1", 1); got["amy/iphone-alert"] != "delivered" {
		t.Fatalf("background trace %v", got)
	}
	rc, _ := sim.Receipt(voip)
	if rc.Headers["apns-push-type"] != "voip" || rc.Headers["apns-topic"] != e2eTopic+".voip" {
		t.Errorf("VoIP headers %v: want push type voip on %s.voip", rc.Headers, e2eTopic)
	}
	rc, _ = sim.Receipt(alert)
	if rc.Headers["apns-push-type"] != "background" || rc.Headers["apns-priority"] != "5" {
		t.Errorf("background headers %v: want push type background, priority 5", rc.Headers)
	}
	var p struct {
		APS  map[string]any `json:"aps"`
		Sync string         `json:"sync"`
	}
	if err := json.Unmarshal(rc.Payload, &p); err != nil || p.APS["content-available"] != float64(1) || p.APS["alert"] != nil || p.Sync != "inbox" {
		t.Errorf("background payload %s: want content-available 1, no alert, custom data kept", rc.Payload)
	}
}

// An over-long body in multi-byte text is trimmed on a character boundary
// to Apple's 4096 bytes: delivered, never a 413.
func TestAPNsLongBodyTrimmed(t *testing.T) {
	needRedis(t)
	sim := pushsimtest.Start(t, pushsim.Config{})
	e := startPushd(t, sim, fmt.Sprintf("{driver: sqlite, path: %q}", filepath.Join(t.TempDir(), "pushd.db")))
	tok := sim.Minter().APNs(pushsim.FateValid, pushsim.Production, e2eTopic, 1)
	e.register("iphone-li", "li", "apns", tok, "production")
	body := strings.Repeat("长消息😀é", 272) // 4080 bytes of 3-, 4- and 2-byte characters: the job allows it, Apple does not with the rest of the payload
	job := map[string]any{"message_id": "long-1", "conversation_id": "conv-l", "recipients": []string{"li"},
		"push": map[string]any{"title": "李", "body": body}}
	if st := e.call("POST", "/v1/push", job, nil); st != 202 {
		t.Fatalf("push: %d", st)
	}
	if got := e.waitTrace("long-1", 1); got["li/iphone-li"] != "delivered" {
		t.Fatalf("trace %v, want delivered", got)
	}
	if n := sim.Total("", 413, ""); n != 0 {
		t.Errorf("APNs answered 413 %d times", n)
	}
	rc, _ := sim.Receipt(tok)
	var p struct {
		APS struct {
			Alert struct{ Body string } `json:"alert"`
		} `json:"aps"`
	}
	if len(rc.Payload) > 4096 || !utf8.Valid(rc.Payload) || json.Unmarshal(rc.Payload, &p) != nil {
		t.Fatalf("payload of %d bytes, valid UTF-8 %v", len(rc.Payload), utf8.Valid(rc.Payload))
	}
	trimmed, ok := strings.CutSuffix(p.APS.Alert.Body, "…")
	if !ok || !strings.HasPrefix(body, trimmed) || len(trimmed) < 3000 {
		t.Errorf("body of %d bytes: want a prefix of the original ending in …, most of 4 KB kept", len(p.APS.Alert.Body))
	}
}

// A Live Activity update reaches its own topic with Apple's aps shape.
func TestAPNsLiveActivity(t *testing.T) {
	needRedis(t)
	sim := pushsimtest.Start(t, pushsim.Config{})
	e := startPushd(t, sim, fmt.Sprintf("{driver: sqlite, path: %q}", filepath.Join(t.TempDir(), "pushd.db")))
	topic := e2eTopic + ".push-type.liveactivity"
	tok := sim.Minter().APNs(pushsim.FateValid, pushsim.Production, topic, 1)
	e.register("iphone-la", "lia", "apns", tok, "production")
	job := map[string]any{"message_id": "la-1", "conversation_id": "conv-la", "recipients": []string{"lia"},
		"push": map[string]any{"ios": map[string]any{"push_type": "liveactivity",
			"live_activity": map[string]any{"event": "update", "content_state": map[string]any{"unread": 3}}}}}
	if st := e.call("POST", "/v1/push", job, nil); st != 202 {
		t.Fatalf("push: %d", st)
	}
	if got := e.waitTrace("la-1", 1); got["lia/iphone-la"] != "delivered" {
		t.Fatalf("trace %v", got)
	}
	rc, _ := sim.Receipt(tok)
	if rc.Headers["apns-push-type"] != "liveactivity" || rc.Headers["apns-topic"] != topic {
		t.Errorf("headers %v: want push type liveactivity on %s", rc.Headers, topic)
	}
	var p struct {
		APS struct {
			Event        string         `json:"event"`
			Timestamp    int64          `json:"timestamp"`
			ContentState map[string]any `json:"content-state"`
		} `json:"aps"`
	}
	if err := json.Unmarshal(rc.Payload, &p); err != nil || p.APS.Event != "update" || p.APS.Timestamp == 0 || p.APS.ContentState["unread"] != float64(3) {
		t.Errorf("payload %s: want event update, a timestamp and the content state", rc.Payload)
	}
}
