package fcm_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"firebase.google.com/go/v4/messaging"

	"github.com/pushd/pushd/internal/fcm"
	"github.com/pushd/pushd/internal/outcome"
	"github.com/pushd/pushd/internal/pushsim"
	"github.com/pushd/pushd/internal/pushsim/pushsimtest"
)

const (
	project = "pushd-test"
	appID   = "chat"
)

type env struct {
	sim    *pushsim.Sim
	app    fcm.AppConfig
	sender *fcm.Sender
}

// appFor registers a new service account of project with sim and returns
// an app config that uses it.
func appFor(t testing.TB, sim *pushsim.Sim, id string) fcm.AppConfig {
	t.Helper()
	sa, err := sim.NewServiceAccount(project)
	if err != nil {
		t.Fatal(err)
	}
	return appWith(t, sim, id, sa)
}

func appWith(t testing.TB, sim *pushsim.Sim, id string, sa *pushsim.ServiceAccount) fcm.AppConfig {
	t.Helper()
	saJSON, err := sa.JSON(sim.TokenURL())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	return fcm.AppConfig{
		AppID:           id,
		CredentialsFile: pushsimtest.WriteFile(t, dir, "service-account.json", saJSON),
		Endpoint:        sim.FCMEndpoint(),
		CAFile:          pushsimtest.WriteFile(t, dir, "ca.pem", sim.CA().CertPEM()),
	}
}

func start(t testing.TB, cfg pushsim.Config) *env {
	t.Helper()
	sim := pushsimtest.Start(t, cfg)
	app := appFor(t, sim, appID)
	s, err := fcm.New(context.Background(), fcm.Config{Apps: []fcm.AppConfig{app}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return &env{sim: sim, app: app, sender: s}
}

func (e *env) token(fate pushsim.Fate, serial uint64) string {
	return e.sim.Minter().FCM(fate, project, serial)
}

func message(token string) *messaging.Message {
	return &messaging.Message{
		Token:        token,
		Notification: &messaging.Notification{Title: "Ada", Body: "Are we still on for tomorrow?"},
		Data:         map[string]string{"conv": "conv-1"},
		Android:      &messaging.AndroidConfig{CollapseKey: "m-1", Priority: "high"},
	}
}

func (e *env) send(t testing.TB, m *messaging.Message) fcm.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return e.sender.Send(ctx, appID, m)
}

func (e *env) fault(t testing.TB, f pushsim.Fault) {
	t.Helper()
	if _, err := e.sim.AddFault(f); err != nil {
		t.Fatal(err)
	}
}

func want(t testing.TB, got fcm.Result, o outcome.Outcome, code string) {
	t.Helper()
	if got.Outcome != o || got.Code != code {
		t.Fatalf("result = %s %q (err %v), want %s %q", got.Outcome, got.Code, got.Err, o, code)
	}
}

func TestSendDelivered(t *testing.T) {
	e := start(t, pushsim.Config{})
	tok := e.token(pushsim.FateValid, 1)
	res := e.send(t, message(tok))
	want(t, res, outcome.Delivered, "")
	if !strings.HasPrefix(res.MessageName, "projects/"+project+"/messages/") || res.Err != nil {
		t.Errorf("message name %q, err %v", res.MessageName, res.Err)
	}
	rc, ok := e.sim.Receipt(tok)
	if !ok || rc.Listener != pushsim.ListenerFCM || rc.Count != 1 {
		t.Fatalf("receipt = %+v, %v; want one at fcm", rc, ok)
	}
	var got struct {
		Token        string            `json:"token"`
		Notification map[string]string `json:"notification"`
		Data         map[string]string `json:"data"`
		Android      struct {
			CollapseKey string `json:"collapse_key"`
			Priority    string `json:"priority"`
		} `json:"android"`
	}
	if err := json.Unmarshal(rc.Payload, &got); err != nil {
		t.Fatalf("payload %s: %v", rc.Payload, err)
	}
	if got.Token != tok || got.Notification["title"] != "Ada" || got.Notification["body"] != "Are we still on for tomorrow?" ||
		got.Data["conv"] != "conv-1" || got.Android.CollapseKey != "m-1" || got.Android.Priority != "high" {
		t.Errorf("payload = %s", rc.Payload)
	}
}

func TestSendTokenFates(t *testing.T) {
	e := start(t, pushsim.Config{})
	cases := []struct {
		name  string
		token string
		code  string
	}{
		{"unregistered", e.token(pushsim.FateUnregistered, 1), "UNREGISTERED"},
		{"malformed", e.token(pushsim.FateMalformed, 2), "INVALID_ARGUMENT"},
		{"not minted", "cQ1cTtAZRZ2:APA91b" + strings.Repeat("x", 140), "INVALID_ARGUMENT"},
		{"other project", e.sim.Minter().FCM(pushsim.FateValid, "another-project", 3), "SENDER_ID_MISMATCH"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := e.send(t, message(c.token))
			want(t, res, outcome.InvalidToken, c.code)
			// The raw SDK error, so messaging.Is* work on it.
			if !messaging.IsUnregistered(res.Err) && !messaging.IsInvalidArgument(res.Err) && !messaging.IsSenderIDMismatch(res.Err) {
				t.Errorf("Err %v is not the SDK's", res.Err)
			}
		})
	}
}

// TestSendFaults provokes each answer through the real SDK. Each fault
// strikes its own token; the SDK's own retries of 503 show in how many
// answers the simulator gave.
func TestSendFaults(t *testing.T) {
	e := start(t, pushsim.Config{})
	cases := []struct {
		name       string
		fault      pushsim.Fault
		outcome    outcome.Outcome
		code       string
		retryAfter time.Duration
		answers    int64 // requests the simulator answered for the token
	}{
		{"429 short Retry-After", pushsim.Fault{Kind: pushsim.FaultTooManyRequests, RetryAfter: 7}, outcome.Retrying, "QUOTA_EXCEEDED", time.Minute, 1},
		{"429 long Retry-After", pushsim.Fault{Kind: pushsim.FaultTooManyRequests, RetryAfter: 150}, outcome.Retrying, "QUOTA_EXCEEDED", 150 * time.Second, 1},
		{"429 no Retry-After", pushsim.Fault{Kind: pushsim.FaultTooManyRequests}, outcome.Retrying, "QUOTA_EXCEEDED", time.Minute, 1},
		{"429 RESOURCE_EXHAUSTED", reason(429, "RESOURCE_EXHAUSTED", 5), outcome.Retrying, "RESOURCE_EXHAUSTED", time.Minute, 1},
		{"500", pushsim.Fault{Kind: pushsim.FaultInternal}, outcome.Retrying, "INTERNAL", 0, 1},
		{"500 with Retry-After", reason(500, "INTERNAL", 3), outcome.Retrying, "INTERNAL", 3 * time.Second, 1},
		// The SDK would wait this out inside the send and try again; the
		// job waits instead, once.
		{"503 Retry-After", pushsim.Fault{Kind: pushsim.FaultUnavailable, RetryAfter: 5}, outcome.Retrying, "UNAVAILABLE", 5 * time.Second, 1},
		{"503 no Retry-After", pushsim.Fault{Kind: pushsim.FaultUnavailable}, outcome.Retrying, "UNAVAILABLE", 0, 1},
		{"503 long Retry-After", pushsim.Fault{Kind: pushsim.FaultUnavailable, RetryAfter: 300}, outcome.Retrying, "UNAVAILABLE", 5 * time.Minute, 1},
		{"third-party auth", pushsim.Fault{Kind: pushsim.FaultThirdPartyAuth}, outcome.AuthError, "THIRD_PARTY_AUTH_ERROR", 0, 1},
		{"APNS_AUTH_ERROR", reason(401, "APNS_AUTH_ERROR", 0), outcome.AuthError, "APNS_AUTH_ERROR", 0, 1},
		{"401 other", reason(401, "UNAUTHENTICATED", 0), outcome.AuthError, "UNAUTHENTICATED", 0, 1},
		{"403 other", reason(403, "PERMISSION_DENIED", 0), outcome.AuthError, "PERMISSION_DENIED", 0, 1},
		{"UNREGISTERED", reason(404, "UNREGISTERED", 0), outcome.InvalidToken, "UNREGISTERED", 0, 1},
		{"SENDER_ID_MISMATCH", reason(403, "SENDER_ID_MISMATCH", 0), outcome.InvalidToken, "SENDER_ID_MISMATCH", 0, 1},
		{"INVALID_ARGUMENT about the message", reason(400, "INVALID_ARGUMENT", 0), outcome.Rejected, "INVALID_ARGUMENT", 0, 1},
		{"404 other", reason(404, "NOT_FOUND", 0), outcome.Rejected, "NOT_FOUND", 0, 1},
		{"502", reason(502, "BAD_GATEWAY", 0), outcome.Retrying, "BAD_GATEWAY", 0, 1},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok := e.token(pushsim.FateValid, uint64(100+i))
			f := c.fault
			f.Listener, f.Tokens, f.Limit = pushsim.ListenerFCM, []string{tok}, 1
			e.fault(t, f)
			before := e.sim.Total(pushsim.ListenerFCM, 0, "")
			res := e.send(t, message(tok))
			want(t, res, c.outcome, c.code)
			if res.RetryAfter != c.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", res.RetryAfter, c.retryAfter)
			}
			if want := strings.HasPrefix(c.name, "429"); res.Throttled != want {
				t.Errorf("Throttled = %v, want %v", res.Throttled, want)
			}
			if n := e.sim.Total(pushsim.ListenerFCM, 0, "") - before; n != c.answers {
				t.Errorf("simulator answered %d times, want %d", n, c.answers)
			}
			want(t, e.send(t, message(tok)), outcome.Delivered, "")
		})
	}
}

func reason(status int, r string, retryAfter int) pushsim.Fault {
	return pushsim.Fault{Kind: pushsim.FaultReason, Status: status, Reason: r, RetryAfter: retryAfter}
}

// TestSendOneAttempt: the SDK would retry 503 UNAVAILABLE (also what
// GOAWAY answers with) and dropped connections inside the send, after 0,
// 1, 2 and 4 seconds; pushd stops it after one attempt and leaves the
// retry to the job, which resends only what is still waiting.
func TestSendOneAttempt(t *testing.T) {
	e := start(t, pushsim.Config{})
	cases := []struct {
		name  string
		fault pushsim.Fault
		code  string
	}{
		{"503", pushsim.Fault{Kind: pushsim.FaultUnavailable}, "UNAVAILABLE"},
		{"goaway", pushsim.Fault{Kind: pushsim.FaultGoAway}, "UNAVAILABLE"},
		{"drop", pushsim.Fault{Kind: pushsim.FaultDrop}, ""},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok := e.token(pushsim.FateValid, uint64(200+i))
			f := c.fault
			f.Listener, f.Tokens, f.Limit = pushsim.ListenerFCM, []string{tok}, 2
			e.fault(t, f)
			before := e.sim.Total(pushsim.ListenerFCM, 0, "")
			conns := e.sim.Connections()[pushsim.ListenerFCM]
			res := e.send(t, message(tok))
			want(t, res, outcome.Retrying, c.code)
			if res.Err == nil {
				t.Error("no error")
			}
			// A dropped request is counted too, as ConnectionDropped.
			if n := e.sim.Total(pushsim.ListenerFCM, 0, "") - before; n != 1 {
				t.Errorf("simulator saw %d requests, want 1: the SDK retried", n)
			}
			if c.fault.Kind == pushsim.FaultDrop {
				if strings.Contains(res.Err.Error(), "context canceled") {
					t.Errorf("Err %q hides the network error", res.Err)
				}
			}
			// The job's retry: the fault has one hit left, then the
			// device gets the message once.
			want(t, e.send(t, message(tok)), outcome.Retrying, c.code)
			want(t, e.send(t, message(tok)), outcome.Delivered, "")
			if rc, _ := e.sim.Receipt(tok); rc.Count != 1 {
				t.Errorf("delivered %d times", rc.Count)
			}
			if c.fault.Kind != pushsim.FaultUnavailable {
				// The broken connection is replaced.
				if n := e.sim.Connections()[pushsim.ListenerFCM]; n <= conns {
					t.Errorf("connections %d → %d, want a new one", conns, n)
				}
			}
		})
	}
}

// TestSendNoAnswer: the connection drops on every try, or the answer takes
// longer than the caller waits, or the caller cancels: Retrying.
func TestSendNoAnswer(t *testing.T) {
	e := start(t, pushsim.Config{})
	t.Run("drop every time", func(t *testing.T) {
		tok := e.token(pushsim.FateValid, 1)
		e.fault(t, pushsim.Fault{Kind: pushsim.FaultDrop, Listener: pushsim.ListenerFCM, Tokens: []string{tok}})
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		res := e.sender.Send(ctx, appID, message(tok))
		if res.Outcome != outcome.Retrying || res.Err == nil {
			t.Fatalf("result = %+v, want Retrying", res)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		tok := e.token(pushsim.FateValid, 2)
		e.fault(t, pushsim.Fault{Kind: pushsim.FaultLatency, Listener: pushsim.ListenerFCM, Tokens: []string{tok}, Latency: pushsim.Duration(5 * time.Second)})
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		if res := e.sender.Send(ctx, appID, message(tok)); res.Outcome != outcome.Retrying || res.Err == nil {
			t.Fatalf("result = %+v, want Retrying", res)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		tok := e.token(pushsim.FateValid, 3)
		e.fault(t, pushsim.Fault{Kind: pushsim.FaultLatency, Listener: pushsim.ListenerFCM, Tokens: []string{tok}, Latency: pushsim.Duration(5 * time.Second)})
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(200*time.Millisecond, cancel)
		if res := e.sender.Send(ctx, appID, message(tok)); res.Outcome != outcome.Retrying || res.Err == nil {
			t.Fatalf("result = %+v, want Retrying", res)
		}
	})
}

func TestSendRejected(t *testing.T) {
	e := start(t, pushsim.Config{})
	tok := e.token(pushsim.FateValid, 1)
	t.Run("refused by FCM", func(t *testing.T) {
		m := message(tok)
		m.Data = map[string]string{"big": strings.Repeat("x", 5000)}
		res := e.send(t, m)
		want(t, res, outcome.Rejected, "INVALID_ARGUMENT")
		if !messaging.IsInvalidArgument(res.Err) {
			t.Errorf("Err %v is not the SDK's INVALID_ARGUMENT", res.Err)
		}
		if res.Field != "message" {
			t.Errorf("Field = %q, want message", res.Field)
		}
	})
	t.Run("field refused by FCM", func(t *testing.T) {
		m := message(tok)
		m.Android.TTL = ptr(5 * 7 * 24 * time.Hour) // FCM keeps four weeks at most
		res := e.send(t, m)
		want(t, res, outcome.Rejected, "INVALID_ARGUMENT")
		if res.Field != "message.android.ttl" {
			t.Errorf("Field = %q, want message.android.ttl", res.Field)
		}
	})
	before := e.sim.Total("", 0, "")
	for name, m := range map[string]*messaging.Message{
		"no target":   {Notification: &messaging.Notification{Title: "x"}},
		"two targets": {Token: tok, Topic: "news"},
		"nil":         nil,
		"bad TTL":     {Token: tok, Android: &messaging.AndroidConfig{TTL: ptr(-time.Second)}},
	} {
		t.Run(name, func(t *testing.T) {
			res := e.send(t, m)
			if res.Outcome != outcome.Rejected || res.Err == nil {
				t.Fatalf("result = %+v, want Rejected by the SDK", res)
			}
		})
	}
	if n := e.sim.Total("", 0, "") - before; n != 0 {
		t.Errorf("the SDK sent %d refused messages", n)
	}
}

func ptr[T any](v T) *T { return &v }

// TestSendRefusedServiceAccount: the service account's key is not (or no
// longer) known to Google. The token endpoint refuses it; that is an
// auth error at once, not seven seconds of the SDK retrying a "network
// error".
func TestSendRefusedServiceAccount(t *testing.T) {
	sim := pushsimtest.Start(t, pushsim.Config{})
	sa, err := pushsim.GenerateServiceAccount(project) // never registered
	if err != nil {
		t.Fatal(err)
	}
	s, err := fcm.New(context.Background(), fcm.Config{Apps: []fcm.AppConfig{appWith(t, sim, appID, sa)}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	begin := time.Now()
	res := s.Send(context.Background(), appID, message(sim.Minter().FCM(pushsim.FateValid, project, 1)))
	if res.Outcome != outcome.AuthError || res.Code != "invalid_grant" {
		t.Fatalf("result = %s %q %v, want AuthError invalid_grant", res.Outcome, res.Code, res.Err)
	}
	if d := time.Since(begin); d > time.Second {
		t.Errorf("took %v: the SDK retried", d)
	}
	if n := sim.Total(pushsim.ListenerFCM, 0, ""); n != 0 {
		t.Errorf("%d sends reached FCM", n)
	}
	if n := sim.Total(pushsim.ListenerFCMOAuth, 400, "invalid_grant"); n != 1 {
		t.Errorf("%d token requests refused, want 1", n)
	}
}

func TestSendNoCredentials(t *testing.T) {
	e := start(t, pushsim.Config{})
	tok := e.token(pushsim.FateValid, 1)
	if res := e.sender.Send(context.Background(), "nope", message(tok)); res.Outcome != outcome.NoCredentials || res.Err == nil {
		t.Errorf("Send = %+v, want NoCredentials", res)
	}
	if n := e.sim.Total("", 0, ""); n != 0 {
		t.Errorf("simulator saw %d requests", n)
	}
}

// TestSendConcurrent sends from 200 goroutines at once, for the race
// detector.
func TestSendConcurrent(t *testing.T) {
	e := start(t, pushsim.Config{})
	var wg sync.WaitGroup
	errs := make(chan string, 200)
	for g := range 200 {
		wg.Go(func() {
			for i := range 5 {
				serial := uint64(g*5 + i)
				fate, wantO := pushsim.FateValid, outcome.Delivered
				if serial%3 == 0 {
					fate, wantO = pushsim.FateUnregistered, outcome.InvalidToken
				}
				if res := e.sender.Send(context.Background(), appID, message(e.token(fate, serial))); res.Outcome != wantO {
					errs <- string(res.Outcome) + " " + res.Code
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
	// One access token for all of them.
	if n := e.sim.Total(pushsim.ListenerFCMOAuth, 200, ""); n != 1 {
		t.Errorf("%d access tokens fetched, want 1", n)
	}
}

func TestNewErrors(t *testing.T) {
	sim := pushsimtest.Start(t, pushsim.Config{})
	good := appFor(t, sim, "good")
	goodJSON, err := os.ReadFile(good.CredentialsFile)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	edit := func(name string, f func(m map[string]any)) string {
		var m map[string]any
		if err := json.Unmarshal(goodJSON, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		b, _ := json.Marshal(m)
		return pushsimtest.WriteFile(t, dir, name, b)
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	ecPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}))

	files := map[string]string{
		"missing":   filepath.Join(dir, "missing.json"),
		"notjson":   pushsimtest.WriteFile(t, dir, "key.pem", []byte("-----BEGIN PRIVATE KEY-----\nMIIEvQ...\n")),
		"array":     pushsimtest.WriteFile(t, dir, "array.json", []byte(`["service_account"]`)),
		"user":      edit("user.json", func(m map[string]any) { m["type"] = "authorized_user" }),
		"notype":    edit("notype.json", func(m map[string]any) { delete(m, "type") }),
		"noproject": edit("noproject.json", func(m map[string]any) { delete(m, "project_id") }),
		"noemail":   edit("noemail.json", func(m map[string]any) { delete(m, "client_email") }),
		"nokey":     edit("nokey.json", func(m map[string]any) { delete(m, "private_key") }),
		"keytext":   edit("keytext.json", func(m map[string]any) { m["private_key"] = "MIIEvQ-not-pem" }),
		"eckey":     edit("eckey.json", func(m map[string]any) { m["private_key"] = ecPEM }),
		"noca":      pushsimtest.WriteFile(t, dir, "noca.pem", []byte("nothing\n")),
	}
	with := func(f func(*fcm.AppConfig)) []fcm.AppConfig {
		a := good
		f(&a)
		return []fcm.AppConfig{a}
	}
	cases := []struct {
		name  string
		apps  []fcm.AppConfig
		wants []string
		is    error
	}{
		{"missing file", with(func(a *fcm.AppConfig) { a.CredentialsFile = files["missing"] }), []string{`"good"`, files["missing"]}, fs.ErrNotExist},
		{"not JSON", with(func(a *fcm.AppConfig) { a.CredentialsFile = files["notjson"] }), []string{files["notjson"], "not JSON"}, nil},
		{"JSON array", with(func(a *fcm.AppConfig) { a.CredentialsFile = files["array"] }), []string{files["array"], "not a JSON object"}, nil},
		{"user credentials", with(func(a *fcm.AppConfig) { a.CredentialsFile = files["user"] }), []string{files["user"], `"authorized_user"`, "service_account"}, nil},
		{"no type", with(func(a *fcm.AppConfig) { a.CredentialsFile = files["notype"] }), []string{files["notype"], `type ""`}, nil},
		{"no project_id", with(func(a *fcm.AppConfig) { a.CredentialsFile = files["noproject"] }), []string{files["noproject"], "project_id"}, nil},
		{"no client_email", with(func(a *fcm.AppConfig) { a.CredentialsFile = files["noemail"] }), []string{files["noemail"], "client_email"}, nil},
		{"no private_key", with(func(a *fcm.AppConfig) { a.CredentialsFile = files["nokey"] }), []string{files["nokey"], "private_key"}, nil},
		{"private_key not PEM", with(func(a *fcm.AppConfig) { a.CredentialsFile = files["keytext"] }), []string{files["keytext"], "private_key", "not PEM"}, nil},
		{"private_key not RSA", with(func(a *fcm.AppConfig) { a.CredentialsFile = files["eckey"] }), []string{files["eckey"], "private_key", "RSA"}, nil},
		{"project mismatch", with(func(a *fcm.AppConfig) { a.ProjectID = "someone-else" }), []string{`"someone-else"`, project, good.CredentialsFile}, nil},
		{"no credentials file", with(func(a *fcm.AppConfig) { a.CredentialsFile = "" }), []string{`"good"`, "credentials file", "application default"}, nil},
		{"file and ADC", with(func(a *fcm.AppConfig) { a.ApplicationDefault = true }), []string{`"good"`, "both", "want one"}, nil},
		{"no app id", with(func(a *fcm.AppConfig) { a.AppID = "" }), []string{"app id"}, nil},
		{"app twice", []fcm.AppConfig{good, good}, []string{`"good"`, "twice"}, nil},
		{"missing CA file", with(func(a *fcm.AppConfig) { a.CAFile = filepath.Join(dir, "nope.pem") }), []string{"nope.pem"}, fs.ErrNotExist},
		{"CA file without certificates", with(func(a *fcm.AppConfig) { a.CAFile = files["noca"] }), []string{files["noca"], "no PEM certificates"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := fcm.New(context.Background(), fcm.Config{Apps: c.apps})
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
			if strings.Contains(err.Error(), "MII") || strings.Contains(err.Error(), "BEGIN") {
				t.Errorf("error %q shows key material", err)
			}
		})
	}
	t.Run("ADC file missing", func(t *testing.T) {
		missing := filepath.Join(dir, "adc-missing.json")
		t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", missing)
		_, err := fcm.New(context.Background(), fcm.Config{Apps: []fcm.AppConfig{{AppID: "good", ApplicationDefault: true}}})
		if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "application default credentials") {
			t.Fatalf("error %v, want one naming %s", err, missing)
		}
	})
	t.Run("ADC without a project", func(t *testing.T) {
		// gcloud's user credentials name no project.
		user := pushsimtest.WriteFile(t, dir, "adc-user.json", []byte(`{"type":"authorized_user","client_id":"c","client_secret":"s","refresh_token":"r"}`))
		t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", user)
		_, err := fcm.New(context.Background(), fcm.Config{Apps: []fcm.AppConfig{{AppID: "good", ApplicationDefault: true}}})
		if err == nil || !strings.Contains(err.Error(), "project id is required") {
			t.Fatalf("error %v, want project id is required", err)
		}
		s, err := fcm.New(context.Background(), fcm.Config{Apps: []fcm.AppConfig{{AppID: "good", ApplicationDefault: true, ProjectID: project}}})
		if err != nil {
			t.Fatalf("with project_id: %v", err)
		}
		s.Close()
	})
	// The project may be given when it matches.
	ok := good
	ok.ProjectID = project
	s, err := fcm.New(context.Background(), fcm.Config{Apps: []fcm.AppConfig{ok}})
	if err != nil {
		t.Fatalf("matching project: %v", err)
	}
	s.Close()
}

// TestApplicationDefaultCredentials: GOOGLE_APPLICATION_CREDENTIALS names
// the service account, the way a deployment on Google Cloud or with a
// mounted secret would; its token_uri is pushsim's.
func TestApplicationDefaultCredentials(t *testing.T) {
	sim := pushsimtest.Start(t, pushsim.Config{})
	file := appFor(t, sim, appID)
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", file.CredentialsFile)
	s, err := fcm.New(context.Background(), fcm.Config{Apps: []fcm.AppConfig{{
		AppID: appID, ApplicationDefault: true, Endpoint: file.Endpoint, CAFile: file.CAFile,
	}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if p, ok := s.Project(appID); !ok || p != project {
		t.Errorf("Project = %q, %v; want the credentials' %q", p, ok, project)
	}
	tok := sim.Minter().FCM(pushsim.FateValid, project, 1)
	want(t, s.Send(context.Background(), appID, message(tok)), outcome.Delivered, "")
	if n := sim.Total(pushsim.ListenerFCMOAuth, http.StatusOK, ""); n != 1 {
		t.Errorf("%d access tokens issued, want 1", n)
	}
}

// TestClientPerProject: apps that share a Firebase project and its
// credentials share one client, so one access token and one connection;
// another service account, even of the same project, is another client.
func TestClientPerProject(t *testing.T) {
	sim := pushsimtest.Start(t, pushsim.Config{})
	a := appFor(t, sim, "chat")
	b := a
	b.AppID = "chat-lite"
	c := appFor(t, sim, "support")
	s, err := fcm.New(context.Background(), fcm.Config{Apps: []fcm.AppConfig{a, b, c}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i, app := range []string{"chat", "chat-lite", "chat", "chat-lite"} {
		want(t, s.Send(context.Background(), app, message(sim.Minter().FCM(pushsim.FateValid, project, uint64(i)))), outcome.Delivered, "")
	}
	if n := sim.Total(pushsim.ListenerFCMOAuth, http.StatusOK, ""); n != 1 {
		t.Errorf("%d access tokens for two apps of one project, want 1", n)
	}
	if n := sim.Connections()[pushsim.ListenerFCM]; n != 1 {
		t.Errorf("%d connections for two apps of one project, want 1", n)
	}
	want(t, s.Send(context.Background(), "support", message(sim.Minter().FCM(pushsim.FateValid, project, 9))), outcome.Delivered, "")
	if n := sim.Total(pushsim.ListenerFCMOAuth, http.StatusOK, ""); n != 2 {
		t.Errorf("%d access tokens after a second service account, want 2", n)
	}
}

// gateway is an HTTPS server beside pushsim, for answers pushsim does not
// give; the app trusts both.
func gateway(t *testing.T, sim *pushsim.Sim, h http.HandlerFunc) (*httptest.Server, string) {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	bundle := append(sim.CA().CertPEM(), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})...)
	return srv, pushsimtest.WriteFile(t, t.TempDir(), "ca.pem", bundle)
}

// TestSendAnswerBrokenOff: the connection drops after FCM's status line,
// in the middle of its body. The SDK counts that as a network error and
// would retry four times over seven seconds; the send ends after one.
func TestSendAnswerBrokenOff(t *testing.T) {
	sim := pushsimtest.Start(t, pushsim.Config{})
	var requests atomic.Int64
	srv, ca := gateway(t, sim, func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"name\":")
		buf.Flush()
		conn.Close()
	})
	app := appFor(t, sim, appID)
	app.Endpoint, app.CAFile = srv.URL+"/v1", ca
	s, err := fcm.New(context.Background(), fcm.Config{Apps: []fcm.AppConfig{app}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res := s.Send(context.Background(), appID, message(sim.Minter().FCM(pushsim.FateValid, project, 1)))
	if res.Outcome != outcome.Retrying || res.Err == nil || strings.Contains(res.Err.Error(), "context canceled") {
		t.Errorf("result = %s %v, want Retrying with the network's error", res.Outcome, res.Err)
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("%d requests for one send: the SDK retried", n)
	}
}

// TestSendTokenEndpointHangs: while the token endpoint takes its time,
// every waiting send gives up when its own context ends, and they share
// one token request.
func TestSendTokenEndpointHangs(t *testing.T) {
	sim := pushsimtest.Start(t, pushsim.Config{})
	entered, release := make(chan struct{}, 16), make(chan struct{})
	var fetches atomic.Int64
	srv, ca := gateway(t, sim, func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		entered <- struct{}{}
		<-release
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"x","token_type":"Bearer","expires_in":3600}`))
	})
	defer close(release)
	sa, err := sim.NewServiceAccount(project)
	if err != nil {
		t.Fatal(err)
	}
	saJSON, err := sa.JSON(srv.URL + "/token")
	if err != nil {
		t.Fatal(err)
	}
	app := fcm.AppConfig{AppID: appID, CredentialsFile: pushsimtest.WriteFile(t, t.TempDir(), "sa.json", saJSON), Endpoint: sim.FCMEndpoint(), CAFile: ca}
	s, err := fcm.New(context.Background(), fcm.Config{Apps: []fcm.AppConfig{app}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	ctx, cancel := context.WithCancel(context.Background())
	results := make(chan fcm.Result, 4)
	for i := range 4 {
		go func() {
			results <- s.Send(ctx, appID, message(sim.Minter().FCM(pushsim.FateValid, project, uint64(i))))
		}()
	}
	<-entered
	cancel()
	for range 4 {
		select {
		case res := <-results:
			if res.Outcome != outcome.Retrying {
				t.Errorf("result = %s %v, want Retrying", res.Outcome, res.Err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a send still waits for the token endpoint after its context ended")
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("%d token requests for four waiting sends, want 1", n)
	}
}

// TestSendTokenEndpointBusy: a 429 or 503 from the token endpoint is no
// verdict on the credentials: retrying, not auth_error.
func TestSendTokenEndpointBusy(t *testing.T) {
	sim := pushsimtest.Start(t, pushsim.Config{})
	for _, status := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			srv, ca := gateway(t, sim, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(status)
				w.Write([]byte(`{"error":"rate_limited"}`))
			})
			sa, _ := sim.NewServiceAccount(project)
			saJSON, _ := sa.JSON(srv.URL + "/token")
			app := fcm.AppConfig{AppID: appID, CredentialsFile: pushsimtest.WriteFile(t, t.TempDir(), "sa.json", saJSON), Endpoint: sim.FCMEndpoint(), CAFile: ca}
			s, err := fcm.New(context.Background(), fcm.Config{Apps: []fcm.AppConfig{app}})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if res := s.Send(context.Background(), appID, message(sim.Minter().FCM(pushsim.FateValid, project, 1))); res.Outcome != outcome.Retrying {
				t.Errorf("result = %s %q %v, want Retrying", res.Outcome, res.Code, res.Err)
			}
		})
	}
}
