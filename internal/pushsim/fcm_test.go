package pushsim_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"firebase.google.com/go/v4/errorutils"
	"firebase.google.com/go/v4/messaging"
	"golang.org/x/oauth2"

	"github.com/pushd/pushd/internal/pushsim"
	"github.com/pushd/pushd/internal/pushsim/pushsimtest"
)

// fcmEnv is a simulator with one service account and the clients a test
// needs to talk to its FCM listener.
type fcmEnv struct {
	sim     *pushsim.Sim
	sa      *pushsim.ServiceAccount
	client  *messaging.Client
	http    *http.Client // trusts the simulator's CA; no credentials
	tokens  oauth2.TokenSource
	project string
}

// newFCMEnv starts a simulator (pushsimtest's defaults: tokens the seed did
// not mint are malformed) and a real Firebase client for it. The app's
// project is appProject; the account's is saProject.
func newFCMEnv(t testing.TB, saProject, appProject string) *fcmEnv {
	t.Helper()
	return newFCMEnvOn(t, pushsimtest.Start(t, pushsim.Config{}), saProject, appProject)
}

// newFCMEnvOn is newFCMEnv on a simulator the test configured itself.
func newFCMEnvOn(t testing.TB, sim *pushsim.Sim, saProject, appProject string) *fcmEnv {
	t.Helper()
	c, sa := pushsimtest.FCMClient(t, sim, saProject, appProject)
	return &fcmEnv{sim: sim, sa: sa, client: c.Messaging, http: c.HTTP, tokens: c.Tokens, project: appProject}
}

func (e *fcmEnv) accessToken(t testing.TB) string {
	t.Helper()
	tok, err := e.tokens.Token()
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

func (e *fcmEnv) token(fate pushsim.Fate, project string, serial uint64) string {
	return e.sim.Minter().FCM(fate, project, serial)
}

// fcmClock is a clock for Config.Now that moves only when told to. Handlers
// read it from their own goroutines, hence the lock.
// fcmGoogleError is the google.rpc.Status body the simulator answers with.
type fcmGoogleError struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
		Details []struct {
			Type            string `json:"@type"`
			ErrorCode       string `json:"errorCode"`
			Reason          string `json:"reason"`
			FieldViolations []struct {
				Field       string `json:"field"`
				Description string `json:"description"`
			} `json:"fieldViolations"`
		} `json:"details"`
	} `json:"error"`
}

func (g *fcmGoogleError) fcmErrorCode() string {
	for _, d := range g.Error.Details {
		if d.Type == "type.googleapis.com/google.firebase.fcm.v1.FcmError" {
			return d.ErrorCode
		}
	}
	return ""
}

func (g *fcmGoogleError) fieldViolation() (field, desc string, ok bool) {
	for _, d := range g.Error.Details {
		if d.Type == "type.googleapis.com/google.rpc.BadRequest" && len(d.FieldViolations) > 0 {
			return d.FieldViolations[0].Field, d.FieldViolations[0].Description, true
		}
	}
	return "", "", false
}

// fcmRawResponse is an answer to a request made without the SDK.
type fcmRawResponse struct {
	status int
	header http.Header
	body   []byte
	err    fcmGoogleError
}

func (e *fcmEnv) do(t testing.TB, method, path, bearer string, body string) fcmRawResponse {
	t.Helper()
	// simclient's HTTP client has no timeout of its own; a hung answer
	// should fail the test, not stall the run.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, e.sim.FCMURL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := fcmRawResponse{status: resp.StatusCode, header: resp.Header, body: b}
	if resp.StatusCode != http.StatusOK {
		if err := json.Unmarshal(b, &r.err); err != nil {
			t.Fatalf("%s %s: %d answer is not JSON: %v\n%s", method, path, resp.StatusCode, err, b)
		}
	}
	return r
}

func (e *fcmEnv) send(t testing.TB, bearer, body string) fcmRawResponse {
	t.Helper()
	return e.do(t, http.MethodPost, "/v1/projects/"+e.project+"/messages:send", bearer, body)
}

func fcmWantCount(t *testing.T, sim *pushsim.Sim, listener string, status int, reason string, want int64) {
	t.Helper()
	if got := sim.Total(listener, status, reason); got != want {
		t.Errorf("Count(%q, %d, %q) = %d, want %d; counts: %+v", listener, status, reason, got, want, sim.Counts())
	}
}

func TestFCMSendHappyPath(t *testing.T) {
	e := newFCMEnv(t, "proj-a", "proj-a")
	ctx := context.Background()
	tok := e.token(pushsim.FateValid, "proj-a", 1)
	ttl := 90 * time.Minute
	badge := 3
	count := 2
	ts := int64(1700000000000)
	event := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	msg := &messaging.Message{
		Token:        tok,
		Data:         map[string]string{"chat": "42", "kind": "message"},
		Notification: &messaging.Notification{Title: "Hi", Body: "There", ImageURL: "https://example.com/a.png"},
		Android: &messaging.AndroidConfig{
			CollapseKey:           "chat-42",
			Priority:              "high",
			TTL:                   &ttl,
			RestrictedPackageName: "com.example.chat",
			Data:                  map[string]string{"android": "yes"},
			DirectBootOK:          true,
			FCMOptions:            &messaging.AndroidFCMOptions{AnalyticsLabel: "android_label"},
			Notification: &messaging.AndroidNotification{
				Title: "A", Body: "B", Icon: "ic", Color: "#ff8800", Sound: "default",
				Tag: "chat-42-tag", ClickAction: "OPEN", BodyLocKey: "bk", BodyLocArgs: []string{"x"},
				TitleLocKey: "tk", TitleLocArgs: []string{"y"}, ChannelID: "chats",
				ImageURL: "https://example.com/b.png", Ticker: "tick", Sticky: true,
				EventTimestamp: &event, LocalOnly: true, Priority: messaging.PriorityHigh,
				VibrateTimingMillis: []int64{100, 250}, DefaultVibrateTimings: true, DefaultSound: true,
				LightSettings: &messaging.LightSettings{
					Color: "#00ff0080", LightOnDurationMillis: 200, LightOffDurationMillis: 300,
				},
				DefaultLightSettings: true, Visibility: messaging.VisibilityPrivate,
				NotificationCount: &count, Proxy: messaging.ProxyDeny,
			},
		},
		APNS: &messaging.APNSConfig{
			Headers: map[string]string{"apns-priority": "10", "apns-push-type": "alert"},
			Payload: &messaging.APNSPayload{
				Aps: &messaging.Aps{
					Alert:          &messaging.ApsAlert{Title: "T", SubTitle: "S", Body: "B", LocKey: "lk", LocArgs: []string{"a"}},
					Badge:          &badge,
					CriticalSound:  &messaging.CriticalSound{Critical: true, Name: "alarm.caf", Volume: 0.5},
					MutableContent: true,
					Category:       "CHAT",
					ThreadID:       "t-42",
					CustomData:     map[string]any{"interruption-level": "time-sensitive"},
				},
				CustomData: map[string]any{"chat_id": 42},
			},
			FCMOptions:        &messaging.APNSFCMOptions{AnalyticsLabel: "apns_label", ImageURL: "https://example.com/c.png"},
			LiveActivityToken: "live-activity-token",
		},
		Webpush: &messaging.WebpushConfig{
			Headers: map[string]string{"TTL": "60", "Urgency": "high"},
			Data:    map[string]string{"web": "1"},
			Notification: &messaging.WebpushNotification{
				Title: "W", Body: "P", Icon: "/i.png", Badge: "/b.png", Direction: "ltr",
				Actions: []*messaging.WebpushNotificationAction{{Action: "reply", Title: "Reply"}},
				Data:    map[string]any{"x": 1},
				Vibrate: []int{100, 50}, Renotify: true, Tag: "w", TimestampMillis: &ts,
				CustomData: map[string]any{"dir2": "rtl"},
			},
			FCMOptions: &messaging.WebpushFCMOptions{Link: "https://example.com/chat/42"},
		},
		FCMOptions: &messaging.FCMOptions{AnalyticsLabel: "campaign_1"},
	}
	name, err := e.client.Send(ctx, msg)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if !strings.HasPrefix(name, "projects/proj-a/messages/0:") {
		t.Errorf("name = %q, want projects/proj-a/messages/0:...", name)
	}
	fcmWantCount(t, e.sim, pushsim.ListenerFCM, http.StatusOK, "", 1)
	fcmWantCount(t, e.sim, pushsim.ListenerFCMOAuth, http.StatusOK, "", 1)

	rc, ok := e.sim.Receipt(tok)
	if !ok || rc.Count != 1 || rc.Listener != pushsim.ListenerFCM {
		t.Fatalf("Receipt = %+v, %v; want one push on %s", rc, ok, pushsim.ListenerFCM)
	}
	var got struct {
		Token   string            `json:"token"`
		Data    map[string]string `json:"data"`
		Android struct {
			CollapseKey  string `json:"collapse_key"`
			Priority     string `json:"priority"`
			TTL          string `json:"ttl"`
			Notification struct {
				Tag   string `json:"tag"`
				Color string `json:"color"`
			} `json:"notification"`
		} `json:"android"`
		APNS struct {
			Headers map[string]string `json:"headers"`
			Payload struct {
				Aps    map[string]any `json:"aps"`
				ChatID int            `json:"chat_id"`
			} `json:"payload"`
		} `json:"apns"`
		Webpush struct {
			FCMOptions struct {
				Link string `json:"link"`
			} `json:"fcm_options"`
		} `json:"webpush"`
	}
	if err := json.Unmarshal(rc.Payload, &got); err != nil {
		t.Fatalf("receipt payload is not the message object: %v\n%s", err, rc.Payload)
	}
	checks := []struct{ what, got, want string }{
		{"token", got.Token, tok},
		{"data.chat", got.Data["chat"], "42"},
		{"android.collapse_key", got.Android.CollapseKey, "chat-42"},
		{"android.priority", got.Android.Priority, "high"},
		{"android.ttl", got.Android.TTL, "5400s"},
		{"android.notification.tag", got.Android.Notification.Tag, "chat-42-tag"},
		{"android.notification.color", got.Android.Notification.Color, "#ff8800"},
		{`apns.headers["apns-priority"]`, got.APNS.Headers["apns-priority"], "10"},
		{"apns.payload.aps.category", fmt.Sprint(got.APNS.Payload.Aps["category"]), "CHAT"},
		{"apns.payload.chat_id", fmt.Sprint(got.APNS.Payload.ChatID), "42"},
		{"webpush.fcm_options.link", got.Webpush.FCMOptions.Link, "https://example.com/chat/42"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("receipt %s = %q, want %q", c.what, c.got, c.want)
		}
	}
	if !json.Valid(rc.Payload) || rc.Payload[0] != '{' {
		t.Errorf("receipt payload is not a JSON object: %s", rc.Payload)
	}
}

func TestFCMDataOnly(t *testing.T) {
	e := newFCMEnv(t, "proj-a", "proj-a")
	tok := e.token(pushsim.FateValid, "proj-a", 2)
	name, err := e.client.Send(context.Background(), &messaging.Message{
		Token: tok,
		Data:  map[string]string{"sync": "true"},
	})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if !strings.HasPrefix(name, "projects/proj-a/messages/") {
		t.Errorf("name = %q", name)
	}
	rc, ok := e.sim.Receipt(tok)
	if !ok {
		t.Fatal("no receipt")
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(rc.Payload, &got); err != nil {
		t.Fatal(err)
	}
	if _, has := got["notification"]; has {
		t.Errorf("data-only message grew a notification: %s", rc.Payload)
	}
	if string(got["data"]) != `{"sync":"true"}` {
		t.Errorf("data = %s", got["data"])
	}
}

func TestFCMUnregistered(t *testing.T) {
	e := newFCMEnv(t, "proj-a", "proj-a")
	tok := e.token(pushsim.FateUnregistered, "proj-a", 3)
	_, err := e.client.Send(context.Background(), &messaging.Message{Token: tok, Data: map[string]string{"a": "b"}})
	if !messaging.IsUnregistered(err) {
		t.Fatalf("Send = %v, want UNREGISTERED", err)
	}
	if !errorutils.IsNotFound(err) {
		t.Errorf("platform code of %v is not NOT_FOUND", err)
	}
	fcmWantCount(t, e.sim, pushsim.ListenerFCM, http.StatusNotFound, "UNREGISTERED", 1)
	if _, ok := e.sim.Receipt(tok); ok {
		t.Error("an unregistered token has a receipt")
	}
}

func TestFCMInvalidRegistrationToken(t *testing.T) {
	e := newFCMEnv(t, "proj-a", "proj-a")
	// The SDK checks only that a token is set, so both reach the server.
	for _, tok := range []string{e.token(pushsim.FateMalformed, "proj-a", 4), "not-a-token!"} {
		_, err := e.client.Send(context.Background(), &messaging.Message{Token: tok, Data: map[string]string{"a": "b"}})
		if !messaging.IsInvalidArgument(err) {
			t.Errorf("Send(%.20s...) = %v, want INVALID_ARGUMENT", tok, err)
			continue
		}
		if !strings.Contains(err.Error(), "not a valid FCM registration token") {
			t.Errorf("Send(%.20s...) = %q, want Google's message", tok, err)
		}
	}
	fcmWantCount(t, e.sim, pushsim.ListenerFCM, http.StatusBadRequest, "INVALID_ARGUMENT", 2)

	r := e.send(t, e.accessToken(t), `{"message":{"token":"not-a-token!"}}`)
	if field, _, _ := r.err.fieldViolation(); r.status != 400 || field != "message.token" {
		t.Errorf("raw send: %d, field %q; want 400 on message.token\n%s", r.status, field, r.body)
	}
}

// TestFCMInvalidArgumentServerSide covers messages the SDK lets through but
// FCM refuses.
func TestFCMInvalidArgumentServerSide(t *testing.T) {
	e := newFCMEnv(t, "proj-a", "proj-a")
	tok := e.token(pushsim.FateValid, "proj-a", 5)
	cases := []struct {
		name string
		msg  *messaging.Message
		want string
	}{
		{"too big", &messaging.Message{Token: tok, Data: map[string]string{"blob": strings.Repeat("x", 5000)}}, "Message is too big"},
		{"too big across blocks", &messaging.Message{
			Token:        tok,
			Data:         map[string]string{"a": strings.Repeat("x", 1500)},
			Notification: &messaging.Notification{Body: strings.Repeat("y", 1500)},
			Android:      &messaging.AndroidConfig{Data: map[string]string{"b": strings.Repeat("z", 1500)}},
		}, "Message is too big"},
		{"reserved data key", &messaging.Message{Token: tok, Data: map[string]string{"from": "me"}}, `"from" is reserved`},
		{"reserved prefix", &messaging.Message{Token: tok, Android: &messaging.AndroidConfig{Data: map[string]string{"google.sent_time": "1"}}}, "message.android.data"},
		{"analytics label", &messaging.Message{Token: tok, FCMOptions: &messaging.FCMOptions{AnalyticsLabel: "has space"}}, "message.fcm_options.analytics_label"},
		{"condition", &messaging.Message{Condition: "'a' in topics &&", Data: map[string]string{"a": "b"}}, "Invalid condition expression"},
		{"condition topics", &messaging.Message{Condition: "'a' in topics || 'b' in topics || 'c' in topics || 'd' in topics || 'e' in topics || 'f' in topics"}, "at most 5 topics"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.client.Send(context.Background(), c.msg)
			if !messaging.IsInvalidArgument(err) {
				t.Fatalf("Send = %v, want INVALID_ARGUMENT", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("Send = %q, want it to mention %q", err, c.want)
			}
		})
	}
	fcmWantCount(t, e.sim, pushsim.ListenerFCM, http.StatusBadRequest, "INVALID_ARGUMENT", int64(len(cases)))
	if _, ok := e.sim.Receipt(tok); ok {
		t.Error("a refused message has a receipt")
	}
}

func TestFCMSenderIDMismatch(t *testing.T) {
	e := newFCMEnv(t, "proj-a", "proj-a")
	tok := e.token(pushsim.FateValid, "proj-b", 6)
	_, err := e.client.Send(context.Background(), &messaging.Message{Token: tok, Data: map[string]string{"a": "b"}})
	if !messaging.IsSenderIDMismatch(err) {
		t.Fatalf("Send = %v, want SENDER_ID_MISMATCH", err)
	}
	if !errorutils.IsPermissionDenied(err) {
		t.Errorf("platform code of %v is not PERMISSION_DENIED", err)
	}
	fcmWantCount(t, e.sim, pushsim.ListenerFCM, http.StatusForbidden, "SENDER_ID_MISMATCH", 1)
}

func fcmAddFault(t *testing.T, sim *pushsim.Sim, f pushsim.Fault) {
	t.Helper()
	if _, err := sim.AddFault(f); err != nil {
		t.Fatal(err)
	}
}

func TestFCMQuotaExceeded(t *testing.T) {
	e := newFCMEnv(t, "proj-a", "proj-a")
	tok := e.token(pushsim.FateValid, "proj-a", 7)
	fcmAddFault(t, e.sim, pushsim.Fault{Kind: pushsim.FaultTooManyRequests, Listener: pushsim.ListenerFCM, Limit: 1, RetryAfter: 7})
	msg := &messaging.Message{Token: tok, Data: map[string]string{"a": "b"}}
	_, err := e.client.Send(context.Background(), msg)
	if !messaging.IsQuotaExceeded(err) {
		t.Fatalf("Send = %v, want QUOTA_EXCEEDED", err)
	}
	if resp := errorutils.HTTPResponse(err); resp == nil || resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "7" {
		t.Errorf("response = %+v, want 429 with Retry-After: 7", resp)
	}
	if _, err := e.client.Send(context.Background(), msg); err != nil {
		t.Fatalf("Send after the fault: %v", err)
	}
	fcmWantCount(t, e.sim, pushsim.ListenerFCM, http.StatusTooManyRequests, "QUOTA_EXCEEDED", 1)
	fcmWantCount(t, e.sim, pushsim.ListenerFCM, http.StatusOK, "", 1)
}

func TestFCMUnavailable(t *testing.T) {
	t.Run("retried by the SDK", func(t *testing.T) {
		e := newFCMEnv(t, "proj-a", "proj-a")
		tok := e.token(pushsim.FateValid, "proj-a", 8)
		// The SDK retries a 503 at once, then after 1s: two failures cost
		// a second and the send succeeds on the third try.
		fcmAddFault(t, e.sim, pushsim.Fault{Kind: pushsim.FaultUnavailable, Listener: pushsim.ListenerFCM, Limit: 2})
		if _, err := e.client.Send(context.Background(), &messaging.Message{Token: tok, Data: map[string]string{"a": "b"}}); err != nil {
			t.Fatalf("Send: %v", err)
		}
		fcmWantCount(t, e.sim, pushsim.ListenerFCM, http.StatusServiceUnavailable, "UNAVAILABLE", 2)
		fcmWantCount(t, e.sim, pushsim.ListenerFCM, http.StatusOK, "", 1)
		if rc, _ := e.sim.Receipt(tok); rc.Count != 1 {
			t.Errorf("receipt count = %d, want 1", rc.Count)
		}
	})
	t.Run("surfaced", func(t *testing.T) {
		e := newFCMEnv(t, "proj-a", "proj-a")
		tok := e.token(pushsim.FateValid, "proj-a", 9)
		// The SDK gives up at once when Retry-After is beyond its two
		// minute cap, which keeps this test fast.
		fcmAddFault(t, e.sim, pushsim.Fault{Kind: pushsim.FaultUnavailable, Listener: pushsim.ListenerFCM, Tokens: []string{tok}, RetryAfter: 600})
		_, err := e.client.Send(context.Background(), &messaging.Message{Token: tok, Data: map[string]string{"a": "b"}})
		if !messaging.IsUnavailable(err) {
			t.Fatalf("Send = %v, want UNAVAILABLE", err)
		}
		fcmWantCount(t, e.sim, pushsim.ListenerFCM, http.StatusServiceUnavailable, "UNAVAILABLE", 1)
		// The rule names one token; others are untouched.
		if _, err := e.client.Send(context.Background(), &messaging.Message{Token: e.token(pushsim.FateValid, "proj-a", 10), Data: map[string]string{"a": "b"}}); err != nil {
			t.Errorf("Send to another token: %v", err)
		}
	})
}

func TestFCMInternal(t *testing.T) {
	e := newFCMEnv(t, "proj-a", "proj-a")
	fcmAddFault(t, e.sim, pushsim.Fault{Kind: pushsim.FaultInternal, Listener: pushsim.ListenerFCM, Limit: 1})
	_, err := e.client.Send(context.Background(), &messaging.Message{Token: e.token(pushsim.FateValid, "proj-a", 11), Data: map[string]string{"a": "b"}})
	if !messaging.IsInternal(err) {
		t.Fatalf("Send = %v, want INTERNAL", err)
	}
	// The SDK does not retry a 500.
	fcmWantCount(t, e.sim, pushsim.ListenerFCM, http.StatusInternalServerError, "INTERNAL", 1)
	fcmWantCount(t, e.sim, pushsim.ListenerFCM, http.StatusOK, "", 0)
}

func TestFCMThirdPartyAuthError(t *testing.T) {
	e := newFCMEnv(t, "proj-a", "proj-a")
	fcmAddFault(t, e.sim, pushsim.Fault{Kind: pushsim.FaultThirdPartyAuth, Listener: pushsim.ListenerFCM, Limit: 1})
	_, err := e.client.Send(context.Background(), &messaging.Message{Token: e.token(pushsim.FateValid, "proj-a", 12), Data: map[string]string{"a": "b"}})
	if !messaging.IsThirdPartyAuthError(err) {
		t.Fatalf("Send = %v, want THIRD_PARTY_AUTH_ERROR", err)
	}
	if !errorutils.IsUnauthenticated(err) {
		t.Errorf("platform code of %v is not UNAUTHENTICATED", err)
	}
	fcmWantCount(t, e.sim, pushsim.ListenerFCM, http.StatusUnauthorized, "THIRD_PARTY_AUTH_ERROR", 1)
}

func TestFCMLatencyFault(t *testing.T) {
	e := newFCMEnv(t, "proj-a", "proj-a")
	e.accessToken(t) // fetch the token outside the timed part
	fcmAddFault(t, e.sim, pushsim.Fault{Kind: pushsim.FaultLatency, Listener: pushsim.ListenerFCM, Latency: pushsim.Duration(150 * time.Millisecond), Limit: 1})
	start := time.Now()
	if _, err := e.client.Send(context.Background(), &messaging.Message{Topic: "news", Data: map[string]string{"a": "b"}}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("Send took %v, want at least the 150ms of latency", d)
	}
}

func TestFCMUnauthenticated(t *testing.T) {
	e := newFCMEnv(t, "proj-a", "proj-a")
	body := `{"message":{"topic":"news"}}`
	for _, c := range []struct {
		name, bearer, msg string
	}{
		{"no credentials", "", "Request is missing required authentication credential."},
		{"unknown token", "ya29.c.not-one-we-issued", "Request had invalid authentication credentials."},
		{"an API key", "AIzaSyD-not-an-oauth-token", "Request had invalid authentication credentials."},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.send(t, c.bearer, body)
			if r.status != http.StatusUnauthorized || r.err.Error.Status != "UNAUTHENTICATED" || r.err.Error.Code != 401 {
				t.Fatalf("answer %d %s, want 401 UNAUTHENTICATED\n%s", r.status, r.err.Error.Status, r.body)
			}
			if !strings.HasPrefix(r.err.Error.Message, c.msg) {
				t.Errorf("message %q, want it to start %q", r.err.Error.Message, c.msg)
			}
			if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
			}
		})
	}
	fcmWantCount(t, e.sim, pushsim.ListenerFCM, http.StatusUnauthorized, "UNAUTHENTICATED", 3)
	if n := len(e.sim.Receipts()); n != 0 {
		t.Errorf("%d receipts, want none", n)
	}
}

// TestFCMExpiredAccessToken proves the server refuses an access token once
// its own clock passes the token's expiry, to the tick, and that the SDK
// recovers by fetching a new one.
func TestFCMExpiredAccessToken(t *testing.T) {
	// The clock starts at the wall time because the SDK signs its
	// assertions with the wall clock, and the token endpoint checks their
	// iat and exp against this one.
	clk := pushsimtest.NewClock(time.Now())
	const ttl = 5 * time.Second
	e := newFCMEnvOn(t, pushsimtest.Start(t, pushsim.Config{Now: clk.Now, AccessTokenTTL: ttl}), "proj-a", "proj-a")
	body := `{"message":{"topic":"news"}}`
	bearer := e.accessToken(t)
	if r := e.send(t, bearer, body); r.status != 200 {
		t.Fatalf("fresh token: %d\n%s", r.status, r.body)
	}
	clk.Advance(ttl - time.Nanosecond)
	if r := e.send(t, bearer, body); r.status != 200 {
		t.Fatalf("token a tick before expiry: %d\n%s", r.status, r.body)
	}
	clk.Advance(time.Nanosecond)
	r := e.send(t, bearer, body)
	if r.status != 401 || r.err.Error.Status != "UNAUTHENTICATED" {
		t.Fatalf("expired token: %d\n%s", r.status, r.body)
	}
	if len(r.err.Error.Details) == 0 || r.err.Error.Details[0].Reason != "ACCESS_TOKEN_EXPIRED" {
		t.Errorf("details = %+v, want reason ACCESS_TOKEN_EXPIRED", r.err.Error.Details)
	}
	if h := r.header.Get("WWW-Authenticate"); !strings.Contains(h, `error="invalid_token"`) {
		t.Errorf("WWW-Authenticate = %q, want error=\"invalid_token\"", h)
	}
	fcmWantCount(t, e.sim, pushsim.ListenerFCMOAuth, http.StatusOK, "", 1)

	// x/oauth2 counts a token as expired 10s before its expires_in runs
	// out, so with a 5s TTL the SDK fetches a new token for each send, and
	// the token endpoint issues it for the simulator's clock: the send
	// succeeds with a second token.
	if _, err := e.client.Send(context.Background(), &messaging.Message{Topic: "news"}); err != nil {
		t.Fatalf("SDK send after expiry: %v", err)
	}
	fcmWantCount(t, e.sim, pushsim.ListenerFCMOAuth, http.StatusOK, "", 2)
	fcmWantCount(t, e.sim, pushsim.ListenerFCM, http.StatusOK, "", 3)
	fcmWantCount(t, e.sim, pushsim.ListenerFCM, http.StatusUnauthorized, "", 1)
}

func TestFCMPermissionDeniedOtherProject(t *testing.T) {
	// An account of proj-b sends to proj-a.
	e := newFCMEnv(t, "proj-b", "proj-a")
	_, err := e.client.Send(context.Background(), &messaging.Message{Token: e.token(pushsim.FateValid, "proj-a", 13), Data: map[string]string{"a": "b"}})
	if !errorutils.IsPermissionDenied(err) {
		t.Fatalf("Send = %v, want PERMISSION_DENIED", err)
	}
	if messaging.IsSenderIDMismatch(err) {
		t.Errorf("a project permission error reads as SENDER_ID_MISMATCH: %v", err)
	}
	want := "Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/proj-a' (or it may not exist)."
	if err.Error() != want {
		t.Errorf("Send = %q, want %q", err, want)
	}
	fcmWantCount(t, e.sim, pushsim.ListenerFCM, http.StatusForbidden, "PERMISSION_DENIED", 1)
}

// fcmAssertion is a service account's signed JWT for the token endpoint.
func fcmAssertion(t *testing.T, key *rsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signed := enc(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." + enc(claims)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestOAuthTokenEndpoint(t *testing.T) {
	// A clock that stands still puts every iat and exp below at a known
	// distance from the server's now.
	clk := pushsimtest.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	sim := pushsimtest.Start(t, pushsim.Config{Now: clk.Now})
	c, sa := pushsimtest.FCMClient(t, sim, "proj-a", "proj-a")
	other, err := pushsim.GenerateServiceAccount("proj-a")
	if err != nil {
		t.Fatal(err)
	}
	hc := c.HTTP
	now := clk.Now().Unix()
	claims := func(mod func(map[string]any)) map[string]any {
		c := map[string]any{
			"iss":   sa.ClientEmail,
			"scope": pushsim.ScopeFirebaseMessaging,
			"aud":   sim.TokenURL(),
			"iat":   now - 10,
			"exp":   now + 3590,
		}
		if mod != nil {
			mod(c)
		}
		return c
	}
	post := func(t *testing.T, form url.Values) (int, map[string]any) {
		t.Helper()
		resp, err := hc.PostForm(sim.TokenURL(), form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatalf("token answer is not JSON: %v", err)
		}
		return resp.StatusCode, out
	}
	grant := func(a string) url.Values {
		return url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {a}}
	}

	t.Run("issues a token", func(t *testing.T) {
		status, out := post(t, grant(fcmAssertion(t, sa.Key, claims(nil))))
		if status != 200 {
			t.Fatalf("status %d: %v", status, out)
		}
		tok, _ := out["access_token"].(string)
		if !strings.HasPrefix(tok, "ya29.") || out["token_type"] != "Bearer" || out["expires_in"] != float64(3600) {
			t.Errorf("answer = %v, want a ya29. Bearer token for 3600s", out)
		}
	})
	t.Run("aud may name another token URL", func(t *testing.T) {
		status, out := post(t, grant(fcmAssertion(t, sa.Key, claims(func(c map[string]any) { c["aud"] = "https://oauth2.googleapis.com/token" }))))
		if status != 200 {
			t.Fatalf("status %d: %v", status, out)
		}
	})

	errs := []struct {
		name      string
		form      url.Values
		err, desc string
	}{
		{"bad signature", grant(fcmAssertion(t, other.Key, claims(nil))), "invalid_grant", "Invalid JWT Signature."},
		{"expired", grant(fcmAssertion(t, sa.Key, claims(func(c map[string]any) { c["iat"] = now - 7200; c["exp"] = now - 3600 }))),
			"invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."},
		{"too long-lived", grant(fcmAssertion(t, sa.Key, claims(func(c map[string]any) { c["exp"] = now + 7200 }))),
			"invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."},
		{"issued in the future", grant(fcmAssertion(t, sa.Key, claims(func(c map[string]any) { c["iat"] = now + 600; c["exp"] = now + 1200 }))),
			"invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."},
		{"unknown account", grant(fcmAssertion(t, other.Key, claims(func(c map[string]any) { c["iss"] = other.ClientEmail }))), "invalid_grant", "Invalid grant: account not found"},
		{"wrong audience", grant(fcmAssertion(t, sa.Key, claims(func(c map[string]any) { c["aud"] = "https://example.com/" }))), "invalid_grant", "Invalid JWT: Failed audience check. The right audience is " + sim.TokenURL()},
		{"no scope", grant(fcmAssertion(t, sa.Key, claims(func(c map[string]any) { delete(c, "scope") }))), "invalid_scope", "Invalid OAuth scope or ID token audience provided."},
		{"not a JWT", grant("garbage"), "invalid_grant", ""},
		{"unsupported grant type", url.Values{"grant_type": {"client_credentials"}}, "unsupported_grant_type", "Invalid grant_type: client_credentials"},
		{"no assertion", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}}, "invalid_request", "Missing required parameter: assertion"},
	}
	for _, c := range errs {
		t.Run(c.name, func(t *testing.T) {
			status, out := post(t, c.form)
			if status != http.StatusBadRequest || out["error"] != c.err {
				t.Fatalf("answer %d %v, want 400 %s", status, out, c.err)
			}
			if c.desc != "" && out["error_description"] != c.desc {
				t.Errorf("error_description = %q, want %q", out["error_description"], c.desc)
			}
		})
	}
	fcmWantCount(t, sim, pushsim.ListenerFCMOAuth, http.StatusOK, "", 2)
	fcmWantCount(t, sim, pushsim.ListenerFCMOAuth, http.StatusBadRequest, "invalid_grant", 7)
	fcmWantCount(t, sim, pushsim.ListenerFCMOAuth, http.StatusBadRequest, "unsupported_grant_type", 1)

	t.Run("GET", func(t *testing.T) {
		resp, err := hc.Get(sim.TokenURL())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET /token = %d, want 405", resp.StatusCode)
		}
	})

	t.Run("insufficient scope", func(t *testing.T) {
		status, out := post(t, grant(fcmAssertion(t, sa.Key, claims(func(c map[string]any) {
			c["scope"] = "https://www.googleapis.com/auth/userinfo.email"
		}))))
		if status != 200 {
			t.Fatalf("status %d: %v", status, out)
		}
		e := &fcmEnv{sim: sim, http: hc, project: "proj-a"}
		r := e.send(t, out["access_token"].(string), `{"message":{"topic":"news"}}`)
		if r.status != http.StatusForbidden || r.err.Error.Status != "PERMISSION_DENIED" || r.err.Error.Message != "Request had insufficient authentication scopes." {
			t.Errorf("send = %d %s %q\n%s", r.status, r.err.Error.Status, r.err.Error.Message, r.body)
		}
	})
}

// fcmConnTracker dials TCP connections for an http.Transport and tells
// when each is closed, so that a test can wait for a connection to go away
// rather than sleep and hope.
type fcmConnTracker struct {
	mu    sync.Mutex
	conns []*fcmTrackedConn
}

type fcmTrackedConn struct {
	net.Conn
	once   sync.Once
	closed chan struct{}
}

func (c *fcmTrackedConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

func (tr *fcmConnTracker) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	tc := &fcmTrackedConn{Conn: c, closed: make(chan struct{})}
	tr.mu.Lock()
	tr.conns = append(tr.conns, tc)
	tr.mu.Unlock()
	return tc, nil
}

func (tr *fcmConnTracker) dialed() []*fcmTrackedConn {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]*fcmTrackedConn(nil), tr.conns...)
}

func TestFCMGoAwayAndDrop(t *testing.T) {
	e := newFCMEnv(t, "proj-a", "proj-a")
	bearer := e.accessToken(t)
	body := `{"message":{"topic":"news","data":{"a":"b"}}}`
	// The raw requests go through a transport whose connections the test
	// can watch; TLS runs over the tracked TCP connections, so HTTP/2 is
	// negotiated as usual.
	var tracker fcmConnTracker
	hc := &http.Client{
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: e.sim.CA().Pool()},
			ForceAttemptHTTP2: true,
			DialContext:       tracker.dial,
		},
		Timeout: 30 * time.Second,
	}
	t.Cleanup(hc.CloseIdleConnections)

	sendTraced := func() (status int, reused bool, err error) {
		req, _ := http.NewRequest(http.MethodPost, e.sim.FCMURL()+"/v1/projects/proj-a/messages:send", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+bearer)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
		}))
		resp, err := hc.Do(req)
		if err != nil {
			return 0, reused, err
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		if resp.ProtoMajor != 2 {
			t.Errorf("proto %s, want HTTP/2", resp.Proto)
		}
		return resp.StatusCode, reused, nil
	}

	// Open a connection first, so that the fault meets a reused one.
	if status, _, err := sendTraced(); err != nil || status != 200 {
		t.Fatalf("warm-up: status %d, err %v", status, err)
	}

	fcmAddFault(t, e.sim, pushsim.Fault{Kind: pushsim.FaultGoAway, Listener: pushsim.ListenerFCM, Limit: 1})
	status, reused, err := sendTraced()
	if err != nil || status != http.StatusServiceUnavailable || !reused {
		t.Fatalf("goaway: status %d, reused %v, err %v; want 503 on the warm connection", status, reused, err)
	}
	// GOAWAY ends the connection: wait until it is closed, then the next
	// request must dial anew. The timeout only bounds a failure.
	conns := tracker.dialed()
	if len(conns) != 1 {
		t.Fatalf("%d connections dialed before GOAWAY, want 1", len(conns))
	}
	select {
	case <-conns[0].closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection that got GOAWAY is still open after 10s")
	}
	status, reused, err = sendTraced()
	if err != nil || status != 200 || reused {
		t.Fatalf("after goaway: status %d, reused %v, err %v; want 200 on a new connection", status, reused, err)
	}
	if n := len(tracker.dialed()); n != 2 {
		t.Errorf("%d connections dialed after GOAWAY, want 2", n)
	}

	fcmAddFault(t, e.sim, pushsim.Fault{Kind: pushsim.FaultDrop, Listener: pushsim.ListenerFCM, Limit: 1})
	if _, _, err := sendTraced(); err == nil {
		t.Fatal("drop: the request succeeded")
	}
	if status, _, err := sendTraced(); err != nil || status != 200 {
		t.Fatalf("after drop: status %d, err %v", status, err)
	}

	// The SDK retries both at once, so its caller sees neither.
	fcmAddFault(t, e.sim, pushsim.Fault{Kind: pushsim.FaultGoAway, Listener: pushsim.ListenerFCM, Limit: 1})
	fcmAddFault(t, e.sim, pushsim.Fault{Kind: pushsim.FaultDrop, Listener: pushsim.ListenerFCM, Limit: 1})
	for i := range 2 {
		if _, err := e.client.Send(context.Background(), &messaging.Message{Topic: "news"}); err != nil {
			t.Errorf("SDK send %d: %v", i, err)
		}
	}
	fcmWantCount(t, e.sim, pushsim.ListenerFCM, http.StatusServiceUnavailable, "UNAVAILABLE", 2)
	fcmWantCount(t, e.sim, pushsim.ListenerFCM, 0, "ConnectionDropped", 2)
	fcmWantCount(t, e.sim, pushsim.ListenerFCM, http.StatusOK, "", 5)
}

func TestFCMValidateOnly(t *testing.T) {
	e := newFCMEnv(t, "proj-a", "proj-a")
	tok := e.token(pushsim.FateValid, "proj-a", 14)
	name, err := e.client.SendDryRun(context.Background(), &messaging.Message{Token: tok, Data: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatalf("SendDryRun: %v", err)
	}
	if name != "projects/proj-a/messages/fake_message_id" {
		t.Errorf("name = %q, want FCM's dry-run name", name)
	}
	if _, ok := e.sim.Receipt(tok); ok {
		t.Error("a dry run left a receipt")
	}
	fcmWantCount(t, e.sim, pushsim.ListenerFCM, http.StatusOK, "", 1)
	// A dry run still checks the token, which is how apps prune stale ones.
	_, err = e.client.SendDryRun(context.Background(), &messaging.Message{Token: e.token(pushsim.FateUnregistered, "proj-a", 15)})
	if !messaging.IsUnregistered(err) {
		t.Errorf("SendDryRun(unregistered) = %v, want UNREGISTERED", err)
	}
}

func TestFCMTopicAndCondition(t *testing.T) {
	e := newFCMEnv(t, "proj-a", "proj-a")
	ctx := context.Background()
	if _, err := e.client.Send(ctx, &messaging.Message{Topic: "/topics/news", Data: map[string]string{"a": "b"}}); err != nil {
		t.Fatalf("topic: %v", err)
	}
	cond := "'dogs' in topics && ('cats' in topics || !('birds' in topics))"
	if _, err := e.client.Send(ctx, &messaging.Message{Condition: cond, Data: map[string]string{"a": "b"}}); err != nil {
		t.Fatalf("condition: %v", err)
	}
	for _, key := range []string{"topic:news", "condition:" + cond} {
		if rc, ok := e.sim.Receipt(key); !ok || rc.Count != 1 {
			t.Errorf("Receipt(%q) = %+v, %v", key, rc, ok)
		}
	}
}

func TestFCMSendEachMixedFates(t *testing.T) {
	e := newFCMEnv(t, "proj-a", "proj-a")
	type want struct {
		ok    bool
		check func(error) bool
	}
	var msgs []*messaging.Message
	var wants []want
	for i := range 50 {
		serial := uint64(100 + i)
		var m *messaging.Message
		var w want
		switch i % 5 {
		case 0:
			m, w = &messaging.Message{Token: e.token(pushsim.FateValid, "proj-a", serial)}, want{ok: true}
		case 1:
			m, w = &messaging.Message{Token: e.token(pushsim.FateUnregistered, "proj-a", serial)}, want{check: messaging.IsUnregistered}
		case 2:
			m, w = &messaging.Message{Token: e.token(pushsim.FateMalformed, "proj-a", serial)}, want{check: messaging.IsInvalidArgument}
		case 3:
			m, w = &messaging.Message{Token: e.token(pushsim.FateValid, "proj-b", serial)}, want{check: messaging.IsSenderIDMismatch}
		case 4:
			m, w = &messaging.Message{Topic: fmt.Sprintf("t%d", i)}, want{ok: true}
		}
		m.Data = map[string]string{"i": fmt.Sprint(i)}
		msgs = append(msgs, m)
		wants = append(wants, w)
	}
	br, err := e.client.SendEach(context.Background(), msgs)
	if err != nil {
		t.Fatalf("SendEach: %v", err)
	}
	if br.SuccessCount != 20 || br.FailureCount != 30 {
		t.Errorf("SendEach: %d succeeded, %d failed; want 20 and 30", br.SuccessCount, br.FailureCount)
	}
	for i, r := range br.Responses {
		w := wants[i]
		switch {
		case w.ok && (!r.Success || !strings.HasPrefix(r.MessageID, "projects/proj-a/messages/")):
			t.Errorf("message %d: %+v, want success", i, r)
		case !w.ok && (r.Success || !w.check(r.Error)):
			t.Errorf("message %d: success %v, error %v", i, r.Success, r.Error)
		}
	}
	for i, m := range msgs {
		key := m.Token
		if m.Topic != "" {
			key = "topic:" + m.Topic
		}
		_, ok := e.sim.Receipt(key)
		if ok != wants[i].ok {
			t.Errorf("message %d: receipt %v, want %v", i, ok, wants[i].ok)
		}
	}
	fcmWantCount(t, e.sim, pushsim.ListenerFCM, http.StatusOK, "", 20)
	fcmWantCount(t, e.sim, pushsim.ListenerFCM, http.StatusNotFound, "UNREGISTERED", 10)
	fcmWantCount(t, e.sim, pushsim.ListenerFCM, http.StatusBadRequest, "INVALID_ARGUMENT", 10)
	fcmWantCount(t, e.sim, pushsim.ListenerFCM, http.StatusForbidden, "SENDER_ID_MISMATCH", 10)
}

func TestFCMValidationErrors(t *testing.T) {
	e := newFCMEnv(t, "proj-a", "proj-a")
	bearer := e.accessToken(t)
	tok := e.token(pushsim.FateValid, "proj-a", 16)
	msg := func(fields string) string {
		return `{"message":{"token":"` + tok + `"` + fields + `}}`
	}
	cases := []struct {
		name, body, field, message string
	}{
		{"unknown field", msg(`,"x":1`), "message",
			`Invalid JSON payload received. Unknown name "x" at 'message': Cannot find field.`},
		{"unknown nested field", msg(`,"android":{"notification":{"priority":"high"}}`), "message.android.notification",
			`Invalid JSON payload received. Unknown name "priority" at 'message.android.notification': Cannot find field.`},
		{"unknown top-level field", `{"validateOnly":true,"msg":{}}`, "",
			`Invalid JSON payload received. Unknown name "msg": Cannot find field.`},
		{"two targets", msg(`,"topic":"news"`), "message",
			"Invalid value at 'message' (oneof), oneof field 'target' is already set. Cannot set 'topic'"},
		{"no target", `{"message":{"data":{"a":"b"}}}`, "message", "Recipient of the message is not set."},
		{"non-string data value", msg(`,"data":{"a":"b","n":1}`), "message.data[1].value",
			"Invalid value at 'message.data[1].value' (TYPE_STRING), 1"},
		{"non-string android data value", msg(`,"android":{"data":{"n":true}}`), "message.android.data[0].value",
			"Invalid value at 'message.android.data[0].value' (TYPE_STRING), true"},
		{"reserved key", msg(`,"data":{"gcm.notification.e":"1"}`), "message.data", `"gcm.notification.e" is reserved`},
		{"bad ttl", msg(`,"android":{"ttl":"3600"}`), "message.android.ttl",
			`Invalid value at 'message.android.ttl' (type.googleapis.com/google.protobuf.Duration), "3600"`},
		{"numeric ttl", msg(`,"android":{"ttl":3600}`), "message.android.ttl",
			"Invalid value at 'message.android.ttl' (type.googleapis.com/google.protobuf.Duration), 3600"},
		{"ttl over four weeks", msg(`,"android":{"ttl":"2419201s"}`), "message.android.ttl", "4 weeks"},
		{"bad priority", msg(`,"android":{"priority":"urgent"}`), "message.android.priority",
			`Invalid value at 'message.android.priority' (type.googleapis.com/google.firebase.fcm.v1.AndroidMessagePriority), "urgent"`},
		{"bad notification priority", msg(`,"android":{"notification":{"notification_priority":"PRIORITY_URGENT"}}`),
			"message.android.notification.notification_priority", "AndroidNotification.NotificationPriority"},
		{"bad color", msg(`,"android":{"notification":{"color":"red"}}`), "message.android.notification.color", "#rrggbb"},
		{"http link", msg(`,"webpush":{"fcm_options":{"link":"http://example.com"}}`), "message.webpush.fcm_options.link", "HTTPS"},
		{"bad event time", msg(`,"android":{"notification":{"event_time":"yesterday"}}`), "message.android.notification.event_time", "google.protobuf.Timestamp"},
		{"list on scalar", msg(`,"android":{"collapse_key":["a"]}`), "message.android",
			`Invalid JSON payload received. Unknown name "collapse_key" at 'message.android': Proto field is not repeating, cannot start list.`},
		{"payload not an object", msg(`,"apns":{"payload":"{}"}`), "message.apns.payload", "google.protobuf.Struct"},
		{"non-string header", msg(`,"apns":{"headers":{"apns-priority":10}}`), "message.apns.headers[0].value", "(TYPE_STRING), 10"},
		{"validate_only not a bool", `{"validate_only":"yes","message":{"topic":"a"}}`, "validate_only", `(TYPE_BOOL), "yes"`},
		{"bad topic", `{"message":{"topic":"no spaces please"}}`, "message.topic", "topic names must match"},
		{"syntax error", `{"message":{"topic":"a",}}`, "", "Invalid JSON payload received."},
		{"too big", msg(`,"notification":{"body":"` + strings.Repeat("z", 4100) + `"}`), "message", "Message is too big"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.send(t, bearer, c.body)
			if r.status != http.StatusBadRequest || r.err.Error.Code != 400 || r.err.Error.Status != "INVALID_ARGUMENT" {
				t.Fatalf("answer %d %s, want 400 INVALID_ARGUMENT\n%s", r.status, r.err.Error.Status, r.body)
			}
			if !strings.Contains(r.err.Error.Message, c.message) {
				t.Errorf("message %q\nwant it to contain %q", r.err.Error.Message, c.message)
			}
			field, desc, ok := r.err.fieldViolation()
			if !ok || field != c.field || desc != r.err.Error.Message {
				t.Errorf("field violation %q %q (%v), want field %q described as the message", field, desc, ok, c.field)
			}
			if code := r.err.fcmErrorCode(); code != "INVALID_ARGUMENT" {
				t.Errorf("FcmError code %q, want INVALID_ARGUMENT", code)
			}
		})
	}
	fcmWantCount(t, e.sim, pushsim.ListenerFCM, http.StatusBadRequest, "INVALID_ARGUMENT", int64(len(cases)))
	if _, ok := e.sim.Receipt(tok); ok {
		t.Error("a refused message has a receipt")
	}

	// Google's parser takes lowerCamelCase names as well as proto names,
	// enum names in any case, and null for an unset field.
	accepted := msg(`,"android":{"collapseKey":"k","priority":"HIGH","ttl":"3.5s","directBootOk":true,` +
		`"notification":{"clickAction":"OPEN","notificationPriority":"priority_low","vibrateTimings":["0.1s"],` +
		`"lightSettings":{"color":{"red":1,"green":0.5,"blue":0},"lightOnDuration":"1s","lightOffDuration":"2s"},"notificationCount":"3"}},` +
		`"fcmOptions":{"analyticsLabel":"x"},"webpush":{"fcmOptions":{"link":"https://example.com","analyticsLabel":"y"}},"apns":{"liveActivityToken":"z"},"name":null`)
	if r := e.send(t, bearer, accepted); r.status != 200 {
		t.Fatalf("camelCase message: %d\n%s", r.status, r.body)
	}
	rc, _ := e.sim.Receipt(tok)
	if !bytes.Contains(rc.Payload, []byte(`"collapseKey":"k"`)) {
		t.Errorf("receipt payload is not the message as sent: %s", rc.Payload)
	}
}

func TestFCMPathsAndMethods(t *testing.T) {
	e := newFCMEnv(t, "proj-a", "proj-a")
	bearer := e.accessToken(t)
	r := e.do(t, http.MethodPost, "/batch", bearer, "")
	if r.status != 404 || r.err.Error.Status != "NOT_FOUND" || !strings.Contains(r.err.Error.Message, "shut down") {
		t.Errorf("POST /batch: %d %s %q", r.status, r.err.Error.Status, r.err.Error.Message)
	}
	r = e.do(t, http.MethodPost, "/fcm/send", bearer, "")
	if r.status != 404 || !strings.Contains(r.err.Error.Message, "legacy") {
		t.Errorf("POST /fcm/send: %d %q", r.status, r.err.Error.Message)
	}
	r = e.do(t, http.MethodPost, "/v1/projects/proj-a/messages:list", bearer, "")
	if r.status != 404 || r.err.Error.Status != "NOT_FOUND" {
		t.Errorf("messages:list: %d %s", r.status, r.err.Error.Status)
	}
	r = e.do(t, http.MethodGet, "/v1/projects/proj-a/messages:send", bearer, "")
	if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "POST" {
		t.Errorf("GET messages:send: %d, Allow %q", r.status, r.header.Get("Allow"))
	}
	fcmWantCount(t, e.sim, pushsim.ListenerFCM, http.StatusNotFound, "NOT_FOUND", 3)

	// HTTP/1.1 clients are served too.
	h1 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.sim.CA().Pool()}}}
	req, _ := http.NewRequest(http.MethodPost, e.sim.FCMEndpoint()+"/projects/proj-a/messages:send", strings.NewReader(`{"message":{"topic":"news"}}`))
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := h1.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 1 {
		t.Errorf("HTTP/1.1 send: %d over %s", resp.StatusCode, resp.Proto)
	}
}

// TestFCMConcurrentSends pushes many sends through one client at once, as
// the benchmarks do, for the race detector.
func TestFCMConcurrentSends(t *testing.T) {
	e := newFCMEnv(t, "proj-a", "proj-a")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				tok := e.token(pushsim.FateValid, "proj-a", uint64(1000+g*100+i))
				if _, err := e.client.Send(context.Background(), &messaging.Message{Token: tok, Data: map[string]string{"i": "1"}}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	fcmWantCount(t, e.sim, pushsim.ListenerFCM, http.StatusOK, "", 200)
	// One token fetch serves every send.
	fcmWantCount(t, e.sim, pushsim.ListenerFCMOAuth, http.StatusOK, "", 1)
}

// BenchmarkFCMSend drives the FCM listener over HTTP/2 with 64 sends in
// flight (client and simulator share this process's cores).
func BenchmarkFCMSend(b *testing.B) {
	e := newFCMEnv(b, "proj-a", "proj-a")
	bearer := e.accessToken(b)
	endpoint := e.sim.FCMURL() + "/v1/projects/proj-a/messages:send"
	body := []byte(`{"message":{"token":"` + e.token(pushsim.FateValid, "proj-a", 1) +
		`","data":{"chat":"42"},"android":{"priority":"high","ttl":"60s","notification":{"title":"Hi","tag":"t"}}}}`)
	b.ReportAllocs()
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	b.Cleanup(func() { b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sends/s") })
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, endpoint, bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+bearer)
			resp, err := e.http.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// TestFCMUnknownTokenDefaultFate covers well-formed registration tokens the
// seed did not mint: pushsimtest makes them malformed, so that a damaged
// token is refused, and Config.DefaultFate can make them valid, as a
// simulator fed real tokens wants.
func TestFCMUnknownTokenDefaultFate(t *testing.T) {
	// The shape of a real token, but not one this seed minted.
	unknown := "cAbCdEfGhIj:APA91b" + strings.Repeat("Zz0_-", 28)
	msg := &messaging.Message{Token: unknown, Data: map[string]string{"a": "b"}}

	t.Run("pushsimtest default", func(t *testing.T) {
		e := newFCMEnv(t, "proj-a", "proj-a")
		if _, err := e.client.Send(context.Background(), msg); !messaging.IsInvalidArgument(err) {
			t.Fatalf("Send = %v, want INVALID_ARGUMENT", err)
		}
		if _, ok := e.sim.Receipt(unknown); ok {
			t.Error("a refused token has a receipt")
		}
	})
	t.Run("DefaultFate valid", func(t *testing.T) {
		e := newFCMEnvOn(t, pushsimtest.Start(t, pushsim.Config{DefaultFate: pushsim.FateValid}), "proj-a", "proj-a")
		if _, err := e.client.Send(context.Background(), msg); err != nil {
			t.Fatalf("Send: %v", err)
		}
		if rc, ok := e.sim.Receipt(unknown); !ok || rc.Count != 1 {
			t.Errorf("Receipt = %+v, %v; want one push", rc, ok)
		}
		// A minted token still meets its own fate.
		_, err := e.client.Send(context.Background(), &messaging.Message{Token: e.token(pushsim.FateUnregistered, "proj-a", 1)})
		if !messaging.IsUnregistered(err) {
			t.Errorf("Send(minted unregistered) = %v, want UNREGISTERED", err)
		}
	})
}

// TestFCMPayloadSizeLimit checks the limits of "Message was too big": 4096
// bytes of keys and values, counted as decoded, across data and
// notification, common and Android; 2048 for topics and conditions.
func TestFCMPayloadSizeLimit(t *testing.T) {
	e := newFCMEnv(t, "proj-a", "proj-a")
	ctx := context.Background()
	tok := e.token(pushsim.FateValid, "proj-a", 1)
	// fill is n bytes of text whose JSON is longer than itself: the SDK
	// escapes '<' as \u003c and "é" is two bytes of UTF-8.
	fill := func(n int) string {
		return strings.Repeat("é", n/2) + strings.Repeat("<", n%2)
	}
	// across is a message whose payload is n bytes: 1 + 500 for data,
	// 5 + 500 for the title, 1 + 500 for Android data, and 4 + the rest
	// for the Android body.
	across := func(target *messaging.Message, n int) *messaging.Message {
		m := *target
		m.Data = map[string]string{"a": fill(500)}
		m.Notification = &messaging.Notification{Title: fill(500)}
		m.Android = &messaging.AndroidConfig{
			Data:         map[string]string{"b": fill(500)},
			Notification: &messaging.AndroidNotification{Body: fill(n - 1507 - 4)},
		}
		return &m
	}
	toToken := &messaging.Message{Token: tok}
	toTopic := &messaging.Message{Topic: "news"}
	toCondition := &messaging.Message{Condition: "'news' in topics"}

	cases := []struct {
		name string
		msg  *messaging.Message
		size int // 0 when the message must pass
		max  int
	}{
		{"1000 '<' pass", &messaging.Message{Token: tok, Data: map[string]string{"k": strings.Repeat("<", 1000)}}, 0, 0},
		{"data at the limit", &messaging.Message{Token: tok, Data: map[string]string{"k": fill(4095)}}, 0, 0},
		{"data over the limit", &messaging.Message{Token: tok, Data: map[string]string{"k": fill(4096)}}, 4097, 4096},
		{"keys count", &messaging.Message{Token: tok, Data: map[string]string{"kk": fill(4095)}}, 4097, 4096},
		{"four blocks at the limit", across(toToken, 4096), 0, 0},
		{"four blocks over the limit", across(toToken, 4097), 4097, 4096},
		{"topic at the limit", &messaging.Message{Topic: "news", Data: map[string]string{"k": fill(2047)}}, 0, 0},
		{"topic over the limit", &messaging.Message{Topic: "news", Data: map[string]string{"k": fill(2048)}}, 2049, 2048},
		{"topic four blocks", across(toTopic, 2100), 2100, 2048},
		{"condition over the limit", &messaging.Message{Condition: "'news' in topics", Data: map[string]string{"k": fill(2048)}}, 2049, 2048},
		{"condition four blocks", across(toCondition, 2048), 0, 0},
	}
	var refused int64
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.client.Send(ctx, c.msg)
			if c.size == 0 {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				return
			}
			refused++
			if !messaging.IsInvalidArgument(err) {
				t.Fatalf("Send = %v, want INVALID_ARGUMENT", err)
			}
			want := fmt.Sprintf("Message is too big: its payload (the keys and values of data and notification) is %d bytes, over the limit of %d bytes", c.size, c.max)
			if !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Send = %q\nwant it to start %q", err, want)
			}
		})
	}
	fcmWantCount(t, e.sim, pushsim.ListenerFCM, http.StatusBadRequest, "INVALID_ARGUMENT", refused)
	fcmWantCount(t, e.sim, pushsim.ListenerFCM, http.StatusOK, "", int64(len(cases))-refused)

	// Notification fields count their proto name as the key, however the
	// JSON spells it, and list fields count the name once and each item.
	bearer := e.accessToken(t)
	for _, c := range []struct{ name, notification string }{
		{"snake_case", `"click_action":"` + fill(4096-len("click_action")) + `"`},
		{"camelCase", `"clickAction":"` + fill(4096-len("click_action")) + `"`},
		{"list", `"body_loc_args":["` + fill(2000) + `","` + fill(4096-len("body_loc_args")-2000) + `"]`},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.send(t, bearer, `{"message":{"token":"`+tok+`","android":{"notification":{`+c.notification+`}}}}`)
			if r.status != 200 {
				t.Fatalf("at the limit: %d\n%s", r.status, r.body)
			}
			r = e.send(t, bearer, `{"message":{"token":"`+tok+`","data":{"x":""},"android":{"notification":{`+c.notification+`}}}}`)
			if field, desc, _ := r.err.fieldViolation(); r.status != 400 || field != "message" || !strings.Contains(desc, "is 4097 bytes") {
				t.Errorf("one byte over: %d, field %q, %q", r.status, field, desc)
			}
		})
	}
}

// TestFCMConditionLimits covers FCM's rule of five topics per condition and
// the simulator's own bounds on nesting and length, which keep a hostile
// condition from running the parser's stack deep.
func TestFCMConditionLimits(t *testing.T) {
	e := newFCMEnv(t, "proj-a", "proj-a")
	bearer := e.accessToken(t)
	nest := func(open, close string, n int) string {
		return strings.Repeat(open, n) + "'a' in topics" + strings.Repeat(close, n)
	}
	topics := func(n int) string {
		var parts []string
		for i := range n {
			parts = append(parts, "'t"+strconv.Itoa(i)+"' in topics")
		}
		return strings.Join(parts, " || ")
	}
	cases := []struct {
		name, cond, why string // why is "" when the condition must pass
	}{
		{"five topics", topics(5), ""},
		{"six topics", topics(6), "at most 5 topics"},
		{"six topics nested", "'a' in topics && ('b' in topics || !('c' in topics && ('d' in topics || 'e' in topics || 'f' in topics)))", "at most 5 topics"},
		{"32 parentheses", nest("(", ")", 32), ""},
		{"33 parentheses", nest("(", ")", 33), "nested more than 32 deep"},
		{"32 negations", nest("!", "", 32), ""},
		{"33 negations", nest("!", "", 33), "nested more than 32 deep"},
		{"negations and parentheses", nest("!(", ")", 17), "nested more than 32 deep"},
		{"900k negations", nest("!", "", 900_000), "at most 16384 bytes long"},
		{"900k parentheses", nest("(", ")", 400_000), "at most 16384 bytes long"},
		{"deep but short enough", nest("!", "", 16_000), "nested more than 32 deep"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body, err := json.Marshal(map[string]any{"message": map[string]any{"condition": c.cond}})
			if err != nil {
				t.Fatal(err)
			}
			r := e.send(t, bearer, string(body))
			if c.why == "" {
				if r.status != 200 {
					t.Fatalf("answer %d, want 200\n%.500s", r.status, r.body)
				}
				return
			}
			field, desc, _ := r.err.fieldViolation()
			if r.status != 400 || r.err.Error.Status != "INVALID_ARGUMENT" || field != "message.condition" {
				t.Fatalf("answer %d %s on %q, want 400 INVALID_ARGUMENT on message.condition\n%.500s", r.status, r.err.Error.Status, field, r.body)
			}
			if !strings.HasPrefix(desc, "Invalid condition expression provided: ") || !strings.Contains(desc, c.why) {
				t.Errorf("description %q, want it to say %q", desc, c.why)
			}
		})
	}
}

// TestFCMReasonFault injects FCM errors by errorCode and HTTP status and
// checks that the Admin SDK reads each as it would Google's.
func TestFCMReasonFault(t *testing.T) {
	e := newFCMEnv(t, "proj-a", "proj-a")
	cases := []struct {
		status     int
		reason     string
		retryAfter int
		checks     map[string]func(error) bool
	}{
		{404, "UNREGISTERED", 0, map[string]func(error) bool{
			"messaging.IsUnregistered": messaging.IsUnregistered, "errorutils.IsNotFound": errorutils.IsNotFound}},
		{400, "INVALID_ARGUMENT", 0, map[string]func(error) bool{
			"messaging.IsInvalidArgument": messaging.IsInvalidArgument, "errorutils.IsInvalidArgument": errorutils.IsInvalidArgument}},
		{401, "APNS_AUTH_ERROR", 0, map[string]func(error) bool{
			"messaging.IsThirdPartyAuthError": messaging.IsThirdPartyAuthError, "errorutils.IsUnauthenticated": errorutils.IsUnauthenticated}},
		{403, "SENDER_ID_MISMATCH", 0, map[string]func(error) bool{
			"messaging.IsSenderIDMismatch": messaging.IsSenderIDMismatch, "errorutils.IsPermissionDenied": errorutils.IsPermissionDenied}},
		{429, "QUOTA_EXCEEDED", 30, map[string]func(error) bool{
			"messaging.IsQuotaExceeded": messaging.IsQuotaExceeded, "errorutils.IsResourceExhausted": errorutils.IsResourceExhausted}},
		{500, "INTERNAL", 0, map[string]func(error) bool{
			"messaging.IsInternal": messaging.IsInternal, "errorutils.IsInternal": errorutils.IsInternal}},
		// The SDK retries a 503 unless Retry-After is past its two
		// minute cap: this one is surfaced at once.
		{503, "UNAVAILABLE", 600, map[string]func(error) bool{
			"messaging.IsUnavailable": messaging.IsUnavailable, "errorutils.IsUnavailable": errorutils.IsUnavailable}},
		{502, "BAD_GATEWAY", 0, map[string]func(error) bool{"errorutils.IsUnknown": errorutils.IsUnknown}},
	}
	for i, c := range cases {
		t.Run(fmt.Sprintf("%d %s", c.status, c.reason), func(t *testing.T) {
			tok := e.token(pushsim.FateValid, "proj-a", uint64(100+i))
			fcmAddFault(t, e.sim, pushsim.Fault{Kind: pushsim.FaultReason, Listener: pushsim.ListenerFCM, Tokens: []string{tok},
				Limit: 1, Status: c.status, Reason: c.reason, RetryAfter: c.retryAfter})
			msg := &messaging.Message{Token: tok, Data: map[string]string{"a": "b"}}
			_, err := e.client.Send(context.Background(), msg)
			if err == nil {
				t.Fatal("Send succeeded through the fault")
			}
			for name, check := range c.checks {
				if !check(err) {
					t.Errorf("%s(%v) = false", name, err)
				}
			}
			resp := errorutils.HTTPResponse(err)
			if resp == nil || resp.StatusCode != c.status {
				t.Fatalf("response = %+v, want status %d", resp, c.status)
			}
			wantRetry := ""
			if c.retryAfter > 0 {
				wantRetry = strconv.Itoa(c.retryAfter)
			}
			if got := resp.Header.Get("Retry-After"); got != wantRetry {
				t.Errorf("Retry-After = %q, want %q", got, wantRetry)
			}
			fcmWantCount(t, e.sim, pushsim.ListenerFCM, c.status, c.reason, 1)
			if _, ok := e.sim.Receipt(tok); ok {
				t.Error("a failed push has a receipt")
			}
			// The rule's one hit is spent: the token is delivered to.
			if _, err := e.client.Send(context.Background(), msg); err != nil {
				t.Errorf("Send after the fault: %v", err)
			}
		})
	}

	// The body is a google.rpc.Status with the FcmError detail, as Google's.
	fcmAddFault(t, e.sim, pushsim.Fault{Kind: pushsim.FaultReason, Listener: pushsim.ListenerFCM, Limit: 1, Status: 404, Reason: "UNREGISTERED"})
	r := e.send(t, e.accessToken(t), `{"message":{"topic":"news"}}`)
	if r.status != 404 || r.err.Error.Code != 404 || r.err.Error.Status != "NOT_FOUND" || r.err.fcmErrorCode() != "UNREGISTERED" ||
		r.err.Error.Message != "Requested entity was not found." {
		t.Errorf("raw answer %d:\n%s", r.status, r.body)
	}
}

// TestOAuthExpiresIn checks that expires_in is rounded up to whole seconds,
// and never 0, which x/oauth2 would read as a token that never expires.
func TestOAuthExpiresIn(t *testing.T) {
	for _, c := range []struct {
		ttl  time.Duration
		want float64
	}{
		{300 * time.Millisecond, 1},
		{time.Second, 1},
		{1500 * time.Millisecond, 2},
		{time.Hour, 3600},
	} {
		t.Run(c.ttl.String(), func(t *testing.T) {
			sim := pushsimtest.Start(t, pushsim.Config{AccessTokenTTL: c.ttl})
			fc, sa := pushsimtest.FCMClient(t, sim, "proj-a", "proj-a")
			now := time.Now().Unix()
			a := fcmAssertion(t, sa.Key, map[string]any{
				"iss": sa.ClientEmail, "scope": pushsim.ScopeFirebaseMessaging, "aud": sim.TokenURL(),
				"iat": now - 10, "exp": now + 3590,
			})
			resp, err := fc.HTTP.PostForm(sim.TokenURL(), url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {a}})
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
				t.Fatalf("token answer %d, %v: %v", resp.StatusCode, err, out)
			}
			if out["expires_in"] != c.want {
				t.Errorf("expires_in = %v, want %v", out["expires_in"], c.want)
			}
			// The SDK's token source sees an expiry, not a token for ever.
			tok, err := fc.Tokens.Token()
			if err != nil {
				t.Fatal(err)
			}
			if tok.Expiry.IsZero() {
				t.Error("the SDK's token has no expiry")
			}
		})
	}
}
