package apns_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/apns"
	"github.com/pushd/pushd/internal/outcome"
	"github.com/pushd/pushd/internal/pushsim"
	"github.com/pushd/pushd/internal/pushsim/pushsimtest"
)

const (
	topic = "com.example.chat"
	appID = "chat"
)

var payload = []byte(`{"aps":{"alert":{"title":"Ada","body":"Are we still on for tomorrow?"},"thread-id":"conv-1"},"conv":"conv-1"}`)

// env is a simulator and a Sender whose one app, appID, talks to it.
type env struct {
	sim    *pushsim.Sim
	key    *pushsim.APNsKey
	app    apns.AppConfig
	sender *apns.Sender
}

// appFor registers a new signing key with sim and returns an app config
// that uses it, with its .p8 and the simulator's CA written to dir.
func appFor(t testing.TB, sim *pushsim.Sim, id string) (apns.AppConfig, *pushsim.APNsKey) {
	t.Helper()
	k, err := sim.NewAPNsKey("", "")
	if err != nil {
		t.Fatal(err)
	}
	p8, err := k.P8()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	return apns.AppConfig{
		AppID:          id,
		KeyFile:        pushsimtest.WriteFile(t, dir, "AuthKey_"+k.KeyID+".p8", p8),
		KeyID:          k.KeyID,
		TeamID:         k.TeamID,
		Topic:          topic,
		ProductionURL:  sim.APNsURL(pushsim.Production),
		DevelopmentURL: sim.APNsURL(pushsim.Development),
		CAFile:         pushsimtest.WriteFile(t, dir, "ca.pem", sim.CA().CertPEM()),
	}, k
}

func start(t testing.TB, cfg pushsim.Config) *env {
	t.Helper()
	sim := pushsimtest.Start(t, cfg)
	app, k := appFor(t, sim, appID)
	s, err := apns.New(apns.Config{Apps: []apns.AppConfig{app}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return &env{sim: sim, key: k, app: app, sender: s}
}

func (e *env) token(fate pushsim.Fate, en pushsim.Env, serial uint64) string {
	return e.sim.Minter().APNs(fate, en, topic, serial)
}

func (e *env) send(t testing.TB, r apns.Request) apns.Result {
	t.Helper()
	if r.Payload == nil {
		r.Payload = payload
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return e.sender.Send(ctx, appID, r)
}

func (e *env) fault(t testing.TB, f pushsim.Fault) {
	t.Helper()
	if _, err := e.sim.AddFault(f); err != nil {
		t.Fatal(err)
	}
}

// want checks a result's outcome, status and reason.
func want(t testing.TB, got apns.Result, o outcome.Outcome, status int, reason string) {
	t.Helper()
	if got.Outcome != o || got.Status != status || got.Reason != reason {
		t.Fatalf("result = %s %d %q (err %v), want %s %d %q", got.Outcome, got.Status, got.Reason, got.Err, o, status, reason)
	}
}

func TestSendRoutesByEnvironment(t *testing.T) {
	e := start(t, pushsim.Config{})
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	cases := []struct {
		name     string
		env      string
		tokenEnv pushsim.Env
		listener string
	}{
		{"default is production", "", pushsim.Production, pushsim.ListenerAPNsProduction},
		{"production", apns.Production, pushsim.Production, pushsim.ListenerAPNsProduction},
		{"development", apns.Development, pushsim.Development, pushsim.ListenerAPNsDevelopment},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok := e.token(pushsim.FateValid, c.tokenEnv, uint64(i))
			id := "0f0e0d0c-0b0a-4908-8706-05040302010" + string(rune('0'+i))
			res := e.send(t, apns.Request{
				Token: tok, Env: c.env, Priority: 10, Expiration: exp,
				CollapseID: "m-1", ApnsID: id,
			})
			want(t, res, outcome.Delivered, http.StatusOK, "")
			wantEnv := c.env
			if wantEnv == "" {
				wantEnv = apns.Production
			}
			if res.Env != wantEnv || res.ApnsID != id || res.Err != nil {
				t.Errorf("env %q apns-id %q err %v, want %q %q nil", res.Env, res.ApnsID, res.Err, wantEnv, id)
			}
			rc, ok := e.sim.Receipt(tok)
			if !ok {
				t.Fatal("no receipt")
			}
			if rc.Listener != c.listener || rc.Count != 1 {
				t.Errorf("receipt at %s ×%d, want %s ×1", rc.Listener, rc.Count, c.listener)
			}
			if !bytes.Equal(rc.Payload, payload) {
				t.Errorf("payload = %s, want %s", rc.Payload, payload)
			}
			for k, v := range map[string]string{
				"apns-topic": topic, "apns-push-type": "alert", "apns-priority": "10",
				"apns-collapse-id": "m-1", "apns-id": id,
				"apns-expiration": strconv.FormatInt(exp.Unix(), 10),
			} {
				if got := rc.Headers[k]; got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
		})
	}
	// Each environment kept its own connection.
	conns := e.sim.Connections()
	if conns[pushsim.ListenerAPNsProduction] != 1 || conns[pushsim.ListenerAPNsDevelopment] != 1 {
		t.Errorf("connections = %v, want one per environment", conns)
	}
}

func TestSendTopicOverride(t *testing.T) {
	e := start(t, pushsim.Config{})
	const other = "com.example.chat.voip"
	tok := e.sim.Minter().APNs(pushsim.FateValid, pushsim.Production, other, 1)
	want(t, e.send(t, apns.Request{Token: tok, Topic: other, PushType: "voip"}), outcome.Delivered, 200, "")
	if rc, _ := e.sim.Receipt(tok); rc.Headers["apns-topic"] != other || rc.Headers["apns-push-type"] != "voip" {
		t.Errorf("headers = %v", rc.Headers)
	}
}

func TestSendTokenFates(t *testing.T) {
	before := time.Now()
	e := start(t, pushsim.Config{})
	after := time.Now()

	t.Run("unregistered", func(t *testing.T) {
		res := e.send(t, apns.Request{Token: e.token(pushsim.FateUnregistered, pushsim.Production, 1)})
		want(t, res, outcome.InvalidToken, http.StatusGone, "Unregistered")
		// pushsim says the token died a day before it started; Apple's
		// timestamp is in milliseconds, apns2 keeps seconds.
		lo, hi := before.Add(-24*time.Hour-time.Second), after.Add(-24*time.Hour)
		if res.TokenInvalidAt.Before(lo) || res.TokenInvalidAt.After(hi) {
			t.Errorf("TokenInvalidAt = %v, want between %v and %v", res.TokenInvalidAt, lo, hi)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		res := e.send(t, apns.Request{Token: e.token(pushsim.FateMalformed, pushsim.Production, 2)})
		want(t, res, outcome.InvalidToken, http.StatusBadRequest, "BadDeviceToken")
		if !res.TokenInvalidAt.IsZero() {
			t.Errorf("TokenInvalidAt = %v on a 400", res.TokenInvalidAt)
		}
	})
	t.Run("other environment", func(t *testing.T) {
		// A development token at the production gateway: Apple says
		// BadDeviceToken, the reason the caller may retry elsewhere on.
		res := e.send(t, apns.Request{Token: e.token(pushsim.FateValid, pushsim.Development, 3), Env: apns.Production})
		want(t, res, outcome.InvalidToken, http.StatusBadRequest, "BadDeviceToken")
	})
	t.Run("other topic", func(t *testing.T) {
		tok := e.sim.Minter().APNs(pushsim.FateValid, pushsim.Production, "com.example.other", 4)
		want(t, e.send(t, apns.Request{Token: tok}), outcome.InvalidToken, http.StatusBadRequest, "DeviceTokenNotForTopic")
	})
	t.Run("not minted", func(t *testing.T) {
		// pushsimtest makes tokens it did not mint malformed.
		want(t, e.send(t, apns.Request{Token: strings.Repeat("ab", 32)}), outcome.InvalidToken, http.StatusBadRequest, "BadDeviceToken")
	})
}

// TestSendFaults provokes every answer pushsim can inject and checks its
// row of the classification. Each fault strikes one push to its own token,
// and the next push to that token is delivered.
func TestSendFaults(t *testing.T) {
	e := start(t, pushsim.Config{})
	cases := []struct {
		name       string
		fault      pushsim.Fault
		outcome    outcome.Outcome
		status     int
		reason     string
		retryAfter time.Duration
	}{
		{"429 with Retry-After", pushsim.Fault{Kind: pushsim.FaultTooManyRequests, RetryAfter: 7}, outcome.Retrying, 429, "TooManyRequests", 7 * time.Second},
		{"429 without Retry-After", pushsim.Fault{Kind: pushsim.FaultTooManyRequests}, outcome.Retrying, 429, "TooManyRequests", 0},
		{"500", pushsim.Fault{Kind: pushsim.FaultInternal}, outcome.Retrying, 500, "InternalServerError", 0},
		{"503 with Retry-After", pushsim.Fault{Kind: pushsim.FaultUnavailable, RetryAfter: 3}, outcome.Retrying, 503, "ServiceUnavailable", 3 * time.Second},
		{"Forbidden", reason(403, "Forbidden"), outcome.AuthError, 403, "Forbidden", 0},
		{"BadCertificate", reason(403, "BadCertificate"), outcome.AuthError, 403, "BadCertificate", 0},
		{"BadCertificateEnvironment", reason(403, "BadCertificateEnvironment"), outcome.AuthError, 403, "BadCertificateEnvironment", 0},
		{"InvalidProviderToken", reason(403, "InvalidProviderToken"), outcome.AuthError, 403, "InvalidProviderToken", 0},
		{"MissingProviderToken", reason(403, "MissingProviderToken"), outcome.AuthError, 403, "MissingProviderToken", 0},
		{"ExpiredToken", reason(410, "ExpiredToken"), outcome.InvalidToken, 410, "ExpiredToken", 0},
		{"TooManyProviderTokenUpdates", reason(429, "TooManyProviderTokenUpdates"), outcome.Retrying, 429, "TooManyProviderTokenUpdates", 0},
		{"IdleTimeout", reason(400, "IdleTimeout"), outcome.Retrying, 400, "IdleTimeout", 0},
		{"BadTopic", reason(400, "BadTopic"), outcome.Rejected, 400, "BadTopic", 0},
		{"TopicDisallowed", reason(400, "TopicDisallowed"), outcome.Rejected, 400, "TopicDisallowed", 0},
		{"MissingTopic", reason(400, "MissingTopic"), outcome.Rejected, 400, "MissingTopic", 0},
		{"BadExpirationDate", reason(400, "BadExpirationDate"), outcome.Rejected, 400, "BadExpirationDate", 0},
		{"unknown 4xx reason", reason(400, "SomethingNew"), outcome.Rejected, 400, "SomethingNew", 0},
		{"unknown 403 reason", reason(403, "SomethingNew"), outcome.AuthError, 403, "SomethingNew", 0},
		{"unknown 5xx reason", reason(502, "SomethingNew"), outcome.Retrying, 502, "SomethingNew", 0},
		{"goaway", pushsim.Fault{Kind: pushsim.FaultGoAway}, outcome.Retrying, 503, "Shutdown", 0},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok := e.token(pushsim.FateValid, pushsim.Production, uint64(100+i))
			f := c.fault
			f.Listener, f.Tokens, f.Limit = "apns", []string{tok}, 1
			e.fault(t, f)
			res := e.send(t, apns.Request{Token: tok})
			want(t, res, c.outcome, c.status, c.reason)
			if res.RetryAfter != c.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", res.RetryAfter, c.retryAfter)
			}
			if c.outcome == outcome.InvalidToken && res.TokenInvalidAt.IsZero() {
				t.Error("no TokenInvalidAt on a 410")
			}
			want(t, e.send(t, apns.Request{Token: tok}), outcome.Delivered, 200, "")
		})
	}
}

func reason(status int, r string) pushsim.Fault {
	return pushsim.Fault{Kind: pushsim.FaultReason, Status: status, Reason: r}
}

func TestSendGoAwayThenDelivered(t *testing.T) {
	e := start(t, pushsim.Config{})
	tok := e.token(pushsim.FateValid, pushsim.Production, 1)
	want(t, e.send(t, apns.Request{Token: tok}), outcome.Delivered, 200, "")
	e.fault(t, pushsim.Fault{Kind: pushsim.FaultGoAway, Listener: "apns", Limit: 1})
	res := e.send(t, apns.Request{Token: tok})
	want(t, res, outcome.Retrying, 503, "Shutdown")
	want(t, e.send(t, apns.Request{Token: tok}), outcome.Delivered, 200, "")
	// The server went away: the client dialled a second connection.
	if n := e.sim.Connections()[pushsim.ListenerAPNsProduction]; n != 2 {
		t.Errorf("connections = %d, want 2", n)
	}
}

func TestSendDroppedConnection(t *testing.T) {
	e := start(t, pushsim.Config{})
	tok := e.token(pushsim.FateValid, pushsim.Production, 1)
	e.fault(t, pushsim.Fault{Kind: pushsim.FaultDrop, Listener: "apns", Limit: 1})
	res := e.send(t, apns.Request{Token: tok})
	if res.Outcome != outcome.Retrying || res.Status != 0 || res.Err == nil {
		t.Fatalf("result = %+v, want Retrying with a transport error", res)
	}
	// net/http's error quotes the URL, which ends in the device token;
	// Err is logged and stored, so it keeps the cause and drops the URL.
	t.Log(res.Err)
	noToken(t, res.Err, tok)
	if msg := res.Err.Error(); !strings.Contains(msg, "post to production gateway") {
		t.Errorf("error %q does not say what failed", msg)
	}
	var ue *url.Error
	if errors.As(res.Err, &ue) {
		t.Errorf("error %q still wraps the *url.Error", res.Err)
	}
	want(t, e.send(t, apns.Request{Token: tok}), outcome.Delivered, 200, "")
}

// noToken fails the test if err's text holds the device token, or any URL
// path that would lead to it.
func noToken(t *testing.T, err error, tok string) {
	t.Helper()
	if msg := err.Error(); strings.Contains(msg, tok) || strings.Contains(msg, "/3/device/") {
		t.Errorf("error %q shows the device token", msg)
	}
}

func TestSendDeadlineAndCancel(t *testing.T) {
	e := start(t, pushsim.Config{})
	tok := e.token(pushsim.FateValid, pushsim.Production, 1)
	e.fault(t, pushsim.Fault{Kind: pushsim.FaultLatency, Listener: "apns", Latency: pushsim.Duration(5 * time.Second)})

	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		res := e.sender.Send(ctx, appID, apns.Request{Token: tok, Payload: payload})
		if res.Outcome != outcome.Retrying || !errors.Is(res.Err, context.DeadlineExceeded) {
			t.Fatalf("result = %s %v, want Retrying with a deadline", res.Outcome, res.Err)
		}
		noToken(t, res.Err, tok)
	})
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		res := e.sender.Send(ctx, appID, apns.Request{Token: tok, Payload: payload})
		if res.Outcome != outcome.Retrying || !errors.Is(res.Err, context.Canceled) {
			t.Fatalf("result = %s %v, want Retrying with context.Canceled", res.Outcome, res.Err)
		}
		noToken(t, res.Err, tok)
	})
}

// TestSendRejectedContent sends what Apple refuses, each through the real
// client where it can get there.
func TestSendRejectedContent(t *testing.T) {
	e := start(t, pushsim.Config{})
	tok := e.token(pushsim.FateValid, pushsim.Production, 1)
	cases := []struct {
		name   string
		req    apns.Request
		status int
		reason string
	}{
		{"too large", apns.Request{Payload: []byte(`{"aps":{"alert":"` + strings.Repeat("x", 4200) + `"}}`)}, 413, "PayloadTooLarge"},
		{"not an object", apns.Request{Payload: []byte(`["aps"]`)}, 400, "PayloadNotJSONObject"},
		{"push type", apns.Request{PushType: "shout"}, 400, "InvalidPushType"},
		{"priority", apns.Request{Priority: 7}, 400, "BadPriority"},
		{"apns-id", apns.Request{ApnsID: "not-a-uuid"}, 400, "BadMessageId"},
		{"collapse id", apns.Request{CollapseID: strings.Repeat("c", 65)}, 400, "BadCollapseId"},
		// apns2 cannot send an empty body; Send refuses it as Apple would.
		{"empty", apns.Request{Payload: []byte{}}, 400, "PayloadEmpty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.req.Token = tok
			want(t, e.send(t, c.req), outcome.Rejected, c.status, c.reason)
		})
	}
	t.Run("not JSON", func(t *testing.T) {
		// apns2 marshals the payload and fails before sending.
		res := e.send(t, apns.Request{Token: tok, Payload: []byte(`{"aps":`)})
		if res.Outcome != outcome.Rejected || res.Err == nil || res.Status != 0 {
			t.Fatalf("result = %+v, want Rejected before sending", res)
		}
	})
	if n := e.sim.Total("", 200, ""); n != 0 {
		t.Errorf("%d pushes delivered, want none", n)
	}
}

func TestSendRevokedKey(t *testing.T) {
	e := start(t, pushsim.Config{})
	tok := e.token(pushsim.FateValid, pushsim.Production, 1)
	want(t, e.send(t, apns.Request{Token: tok}), outcome.Delivered, 200, "")
	// The key is revoked in Apple's developer account: the operator must
	// act, and the token is not to blame.
	e.sim.RemoveAPNsKey(e.key.KeyID)
	want(t, e.send(t, apns.Request{Token: tok}), outcome.AuthError, 403, "InvalidProviderToken")
}

func TestSendNoCredentials(t *testing.T) {
	e := start(t, pushsim.Config{})
	tok := e.token(pushsim.FateValid, pushsim.Production, 1)
	for _, c := range []struct{ app, env string }{{"nope", ""}, {appID, "staging"}} {
		res := e.sender.Send(context.Background(), c.app, apns.Request{Token: tok, Env: c.env, Payload: payload})
		if res.Outcome != outcome.NoCredentials || res.Err == nil {
			t.Errorf("app %q env %q: %+v, want NoCredentials", c.app, c.env, res)
		}
	}
	if n := e.sim.Total("", 0, ""); n != 0 {
		t.Errorf("simulator saw %d requests, want none", n)
	}
}

func TestSendAfterClose(t *testing.T) {
	e := start(t, pushsim.Config{})
	tok := e.token(pushsim.FateValid, pushsim.Production, 1)
	want(t, e.send(t, apns.Request{Token: tok}), outcome.Delivered, 200, "")
	// The HTTP/2 client forgets a finished stream in its read loop just
	// after the caller has the answer, and until then the connection is
	// not idle; so Close is tried again, a moment later, until it has
	// something to close.
	for range 100 {
		time.Sleep(10 * time.Millisecond)
		e.sender.Close()
		want(t, e.send(t, apns.Request{Token: tok}), outcome.Delivered, 200, "")
		if e.sim.Connections()[pushsim.ListenerAPNsProduction] == 2 {
			return
		}
	}
	t.Error("Close never closed the idle connection")
}

// TestSendConcurrent sends from 200 goroutines at once, to both
// environments and every fate, for the race detector and for routing.
func TestSendConcurrent(t *testing.T) {
	e := start(t, pushsim.Config{})
	const goroutines, each = 200, 10
	type job struct {
		tok  string
		env  string
		want outcome.Outcome
	}
	jobs := make([][]job, goroutines)
	for g := range jobs {
		for i := range each {
			serial := uint64(g*each + i)
			var j job
			switch serial % 4 {
			case 0:
				j = job{e.token(pushsim.FateValid, pushsim.Production, serial), apns.Production, outcome.Delivered}
			case 1:
				j = job{e.token(pushsim.FateValid, pushsim.Development, serial), apns.Development, outcome.Delivered}
			case 2:
				j = job{e.token(pushsim.FateUnregistered, pushsim.Development, serial), apns.Development, outcome.InvalidToken}
			case 3:
				j = job{e.token(pushsim.FateMalformed, pushsim.Production, serial), apns.Production, outcome.InvalidToken}
			}
			jobs[g] = append(jobs[g], j)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan string, goroutines*each)
	for g := range goroutines {
		wg.Go(func() {
			for _, j := range jobs[g] {
				res := e.sender.Send(context.Background(), appID, apns.Request{Token: j.tok, Env: j.env, Payload: payload})
				if res.Outcome != j.want {
					errs <- string(res.Outcome) + " " + res.Reason + ", want " + string(j.want)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
	if p, d := e.sim.Total(pushsim.ListenerAPNsProduction, 200, ""), e.sim.Total(pushsim.ListenerAPNsDevelopment, 200, ""); p != goroutines*each/4 || d != goroutines*each/4 {
		t.Errorf("delivered %d production, %d development; want %d each", p, d, goroutines*each/4)
	}
	// One provider token for the whole run: no refresh storm.
	if n := e.sim.Total("", 429, "TooManyProviderTokenUpdates") + e.sim.Total("", 403, ""); n != 0 {
		t.Errorf("%d provider-token refusals", n)
	}
}

func TestNewErrors(t *testing.T) {
	sim := pushsimtest.Start(t, pushsim.Config{})
	good, _ := appFor(t, sim, "good")
	dir := t.TempDir()

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaDER, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384DER, _ := x509.MarshalPKCS8PrivateKey(p384)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sec1DER, _ := x509.MarshalECPrivateKey(p256)
	otherDER, _ := x509.MarshalPKCS8PrivateKey(p256)

	files := map[string]string{
		"missing": filepath.Join(dir, "AuthKey_MISSING.p8"),
		"text":    pushsimtest.WriteFile(t, dir, "text.p8", []byte("this is not a key\n")),
		"rsa":     pushsimtest.WriteFile(t, dir, "rsa.p8", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: rsaDER})),
		"p384":    pushsimtest.WriteFile(t, dir, "p384.p8", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p384DER})),
		"sec1":    pushsimtest.WriteFile(t, dir, "sec1.p8", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1DER})),
		"other":   pushsimtest.WriteFile(t, dir, "other.p8", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: otherDER})),
		"noca":    pushsimtest.WriteFile(t, dir, "noca.pem", []byte("no certificates here\n")),
	}
	with := func(f func(*apns.AppConfig)) []apns.AppConfig {
		a := good
		f(&a)
		return []apns.AppConfig{a}
	}
	cases := []struct {
		name  string
		apps  []apns.AppConfig
		wants []string
		is    error
	}{
		{"missing key file", with(func(a *apns.AppConfig) { a.KeyFile = files["missing"] }), []string{files["missing"], `"good"`}, fs.ErrNotExist},
		{"not PEM", with(func(a *apns.AppConfig) { a.KeyFile = files["text"] }), []string{files["text"], "not a PEM file"}, nil},
		{"RSA key", with(func(a *apns.AppConfig) { a.KeyFile = files["rsa"] }), []string{files["rsa"], "rsa.PrivateKey", "P-256"}, nil},
		{"P-384 key", with(func(a *apns.AppConfig) { a.KeyFile = files["p384"] }), []string{files["p384"], "P-384", "want P-256"}, nil},
		{"SEC1 key", with(func(a *apns.AppConfig) { a.KeyFile = files["sec1"] }), []string{files["sec1"], "PKCS#8", `"EC PRIVATE KEY"`}, nil},
		{"no key file", with(func(a *apns.AppConfig) { a.KeyFile = "" }), []string{"key file"}, nil},
		{"no key id", with(func(a *apns.AppConfig) { a.KeyID = "" }), []string{"key id"}, nil},
		{"no team id", with(func(a *apns.AppConfig) { a.TeamID = "" }), []string{"team id"}, nil},
		{"no topic", with(func(a *apns.AppConfig) { a.Topic = "" }), []string{"topic"}, nil},
		{"no app id", with(func(a *apns.AppConfig) { a.AppID = "" }), []string{"app id"}, nil},
		{"missing CA file", with(func(a *apns.AppConfig) { a.CAFile = filepath.Join(dir, "nope.pem") }), []string{"nope.pem"}, fs.ErrNotExist},
		{"CA file without certificates", with(func(a *apns.AppConfig) { a.CAFile = files["noca"] }), []string{files["noca"], "no PEM certificates"}, nil},
		{"app twice", []apns.AppConfig{good, good}, []string{`"good"`, "twice"}, nil},
		{"one key id, two keys", func() []apns.AppConfig {
			b := good
			b.AppID, b.KeyFile = "second", files["other"]
			return []apns.AppConfig{good, b}
		}(), []string{files["other"], good.KeyFile, "differs"}, nil},
		{"one key id, two teams", func() []apns.AppConfig {
			b := good
			b.AppID, b.TeamID = "second", "OTHERTEAM1"
			return []apns.AppConfig{good, b}
		}(), []string{"OTHERTEAM1", "team"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := apns.New(apns.Config{Apps: c.apps})
			if err == nil {
				s.Close()
				t.Fatal("New succeeded")
			}
			t.Log(err)
			for _, w := range c.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("error %q is not %v", err, c.is)
			}
			// Key files start with PKCS#8's "MI..." once base64-encoded;
			// none of it, nor of any file's text, belongs in an error.
			if strings.Contains(err.Error(), "MIG") || strings.Contains(err.Error(), "MII") || strings.Contains(err.Error(), "not a key") {
				t.Errorf("error %q shows file content", err)
			}
		})
	}
}

// TestSharedKeyAcrossApps configures two apps with one key file: both
// deliver with one provider token, so the simulator, which like Apple
// refuses a key's new token within 20 minutes of the last, accepts both.
func TestSharedKeyAcrossApps(t *testing.T) {
	sim := pushsimtest.Start(t, pushsim.Config{})
	a, _ := appFor(t, sim, "a")
	b := a
	b.AppID = "b"
	s, err := apns.New(apns.Config{Apps: []apns.AppConfig{a, b}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i, id := range []string{"a", "b", "a", "b"} {
		en, lis := pushsim.Production, apns.Production
		if i%2 == 1 {
			en, lis = pushsim.Development, apns.Development
		}
		tok := sim.Minter().APNs(pushsim.FateValid, en, topic, uint64(i))
		res := s.Send(context.Background(), id, apns.Request{Token: tok, Env: lis, Payload: payload})
		want(t, res, outcome.Delivered, 200, "")
	}
}
