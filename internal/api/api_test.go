package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/api"
	"github.com/pushd/pushd/internal/installations"
	"github.com/pushd/pushd/internal/mute"
	"github.com/pushd/pushd/internal/secret"
	"github.com/pushd/pushd/internal/storage"
	"github.com/pushd/pushd/internal/storage/storagetest"
	"github.com/pushd/pushd/pushjob"
)

// The API runs over real registry and mute stores on SQLite; only the queue
// is a fake, which records what it was asked to enqueue. "Nothing was
// written" means every table reads the same after the request as before
// and nothing was enqueued.

const (
	token       = "api-token-0123456789abcdef"
	otherToken  = "second-token-0123456789"
	apnsTok     = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
	fcmTok      = "dGVzdC1mY20tdG9rZW4:APA91bHPRgkF3JUikC4ENAHEeMrd41Zxv3hVZjC9KtT8OvPVGJ-hQMRKRrZuJAEcl7B338qju59zJMjw2DELjzEvxwYv7hH5Ynpc1ODQ0aT4U4OFEeco8ohsN5PjL1iC2dNtk2BAokeMCg2ZXKqpc8FXKmhX94kIxQ"
	maxBodySize = 64 << 20
)

// t0 is the API's clock in these tests.
var t0 = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

// enqueuer is the queue: it records every job and answers with err.
type enqueuer struct {
	mu   sync.Mutex
	jobs []pushjob.Job
	err  error
}

func (e *enqueuer) Enqueue(ctx context.Context, j pushjob.Job) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.jobs = append(e.jobs, j)
	id := pushjob.TaskID(j.AppID, j.MessageID)
	if e.err != nil {
		return id, e.err
	}
	return id, nil
}

func (e *enqueuer) calls() []pushjob.Job {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.jobs)
}

type server struct {
	t     *testing.T
	db    *storage.DB
	reg   *installations.Store
	mutes *mute.Store
	del   *installations.Deliveries
	enq   *enqueuer
	h     http.Handler
}

// newServer serves the apps "default" and "chat"; change adjusts the
// config before the handler is built.
func newServer(t *testing.T, change ...func(*api.Config)) *server {
	t.Helper()
	db := storagetest.SQLite(t)
	s := &server{
		t: t, db: db,
		reg:   installations.NewStore(db),
		mutes: mute.NewStore(db),
		del:   installations.NewDeliveries(db),
		enq:   &enqueuer{},
	}
	cfg := api.Config{
		Tokens:        []secret.Secret{token, otherToken},
		Apps:          []string{"default", "chat"},
		Installations: s.reg,
		Mutes:         s.mutes,
		Enqueuer:      s.enq,
		Traces:        s.del,
		Ready: []api.Check{
			{Name: "database", Check: db.PingContext},
		},
		Now: func() time.Time { return t0 },
	}
	for _, c := range change {
		c(&cfg)
	}
	h, err := api.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.h = h
	return s
}

// with returns s reporting to t, for a subtest.
func (s *server) with(t *testing.T) *server {
	c := *s
	c.t = t
	return &c
}

// response is an answer as a client sees it.
type response struct {
	status int
	header http.Header
	body   []byte
}

// errorBody is the API's error answer.
type errorBody struct {
	Error  string           `json:"error"`
	Fields []api.FieldError `json:"fields"`
	TaskID string           `json:"task_id"`
}

// do sends a request with the API token.
func (s *server) do(method, path, body string) response {
	s.t.Helper()
	return s.doAuth(method, path, body, "Bearer "+token)
}

// doAuth sends a request with the given Authorization header ("" for
// none).
func (s *server) doAuth(method, path, body, auth string) response {
	s.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, req)
	return response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

// error decodes an error answer, checking it is JSON with a message.
func (r response) error(t *testing.T) errorBody {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var e errorBody
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body %q is not JSON: %v", r.body, err)
	}
	if e.Error == "" {
		t.Errorf("error body %s has no message", r.body)
	}
	return e
}

// want checks the status, showing the body when it is wrong.
func (r response) want(t *testing.T, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
}

// snapshot is everything the API can write: every table's rows and the
// jobs enqueued.
func (s *server) snapshot() string {
	s.t.Helper()
	var b strings.Builder
	for _, table := range []string{"installations", "mutes", "deliveries"} {
		rows, err := s.db.QueryContext(context.Background(), "SELECT * FROM "+table+" ORDER BY 1, 2, 3")
		if err != nil {
			s.t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				s.t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s %v\n", table, vals)
		}
		if err := rows.Err(); err != nil {
			s.t.Fatal(err)
		}
		rows.Close()
	}
	fmt.Fprintf(&b, "enqueued %d\n", len(s.enq.calls()))
	return b.String()
}

// unchanged runs fn and fails the test if it wrote anything.
func (s *server) unchanged(fn func()) {
	s.t.Helper()
	before := s.snapshot()
	fn()
	if after := s.snapshot(); after != before {
		s.t.Errorf("the request wrote something:\nbefore:\n%safter:\n%s", before, after)
	}
}

// badRequest sends a request that must fail with status and write
// nothing, and returns its error.
func (s *server) badRequest(method, path, body string, status int) errorBody {
	s.t.Helper()
	var e errorBody
	s.unchanged(func() {
		r := s.do(method, path, body)
		r.want(s.t, status)
		e = r.error(s.t)
	})
	return e
}

// hasFields checks that the error names each field with a rule containing
// the given text, and names no other field.
func hasFields(t *testing.T, e errorBody, want map[string]string) {
	t.Helper()
	got := make(map[string][]string)
	for _, f := range e.Fields {
		if f.Rule == "" {
			t.Errorf("field %q has no rule", f.Field)
		}
		got[f.Field] = append(got[f.Field], f.Rule)
	}
	for field, rule := range want {
		rules, ok := got[field]
		if !ok {
			t.Errorf("error %+v does not name field %q", e, field)
			continue
		}
		if !slices.ContainsFunc(rules, func(r string) bool { return strings.Contains(r, rule) }) {
			t.Errorf("field %q: rules %q, want one containing %q", field, rules, rule)
		}
	}
	for field := range got {
		if _, ok := want[field]; !ok {
			t.Errorf("error names unexpected field %q: %q", field, got[field])
		}
	}
}

func (s *server) register(id, client, provider, tok string) installations.Installation {
	s.t.Helper()
	in, err := s.reg.Upsert(context.Background(), installations.Installation{
		ID: id, AppID: "default", ClientID: client, Provider: installations.Provider(provider), Token: tok,
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return in
}

func (s *server) listInstallations(client string) []installations.Installation {
	s.t.Helper()
	r := s.do("GET", "/v1/installations?client_id="+client, "")
	r.want(s.t, 200)
	var out struct {
		Installations []installations.Installation `json:"installations"`
	}
	if err := json.Unmarshal(r.body, &out); err != nil {
		s.t.Fatal(err)
	}
	return out.Installations
}

func (s *server) listMutes(client string) []mute.Mute {
	s.t.Helper()
	r := s.do("GET", "/v1/mutes?client_id="+client, "")
	r.want(s.t, 200)
	var out struct {
		Mutes []mute.Mute `json:"mutes"`
	}
	if err := json.Unmarshal(r.body, &out); err != nil {
		s.t.Fatal(err)
	}
	return out.Mutes
}

// jsonBody marshals v.
func jsonBody(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// route is one authenticated route with a request that would succeed.
type route struct {
	method, path, body string
}

var authRoutes = []route{
	{"PUT", "/v1/installations/dev-1", `{"client_id":"alice","provider":"apns","token":"` + apnsTok + `"}`},
	{"DELETE", "/v1/installations/dev-1", ""},
	{"GET", "/v1/installations?client_id=alice", ""},
	{"DELETE", "/v1/clients/alice/badge", ""},
	{"PUT", "/v1/mutes/alice/conv-1", `{}`},
	{"DELETE", "/v1/mutes/alice/conv-1", ""},
	{"GET", "/v1/mutes?client_id=alice", ""},
	{"POST", "/v1/push", `{"message_id":"m1","conversation_id":"conv-1","recipients":["alice"]}`},
	{"GET", "/v1/messages/m1", ""},
}

// Every route but the probes refuses a request without a valid bearer
// token with a JSON 401, and writes nothing.
func TestAuthRequired(t *testing.T) {
	s := newServer(t)
	s.register("dev-1", "alice", "apns", apnsTok)
	if err := s.mutes.Set(context.Background(), mute.Mute{AppID: "default", ClientID: "alice", ConversationID: "conv-1"}, t0); err != nil {
		t.Fatal(err)
	}
	for _, rt := range authRoutes {
		for name, auth := range map[string]string{
			"no header":          "",
			"wrong token":        "Bearer not-the-token-0123456789",
			"token cut short":    "Bearer " + token[:len(token)-1],
			"token with more":    "Bearer " + token + "0",
			"trailing space":     "Bearer " + token + " ",
			"empty bearer":       "Bearer ",
			"scheme only":        "Bearer",
			"token without":      token,
			"basic auth":         "Basic " + token,
			"both tokens joined": "Bearer " + token + otherToken,
		} {
			t.Run(rt.method+" "+rt.path+"/"+name, func(t *testing.T) {
				s := s.with(t)
				s.unchanged(func() {
					r := s.doAuth(rt.method, rt.path, rt.body, auth)
					r.want(t, http.StatusUnauthorized)
					e := r.error(t)
					if !strings.Contains(e.Error, "bearer token") {
						t.Errorf("401 says %q, want it to ask for a bearer token", e.Error)
					}
					if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
						t.Errorf("WWW-Authenticate %q, want a Bearer challenge", got)
					}
				})
			})
		}
	}
}

func TestAuthAcceptsEveryConfiguredToken(t *testing.T) {
	s := newServer(t)
	for _, auth := range []string{"Bearer " + token, "Bearer " + otherToken, "bearer " + token, "BEARER " + otherToken} {
		s.doAuth("GET", "/v1/installations?client_id=alice", "", auth).want(t, 200)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	db := storagetest.SQLite(t)
	ok := api.Config{Tokens: []secret.Secret{token}, Installations: installations.NewStore(db), Mutes: mute.NewStore(db), Enqueuer: &enqueuer{}}
	for name, change := range map[string]func(*api.Config){
		"no tokens":    func(c *api.Config) { c.Tokens = nil },
		"empty token":  func(c *api.Config) { c.Tokens = []secret.Secret{token, ""} },
		"no enqueuer":  func(c *api.Config) { c.Enqueuer = nil },
		"no registry":  func(c *api.Config) { c.Installations = nil },
		"no mutestore": func(c *api.Config) { c.Mutes = nil },
	} {
		cfg := ok
		change(&cfg)
		if _, err := api.New(cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

func TestHealthz(t *testing.T) {
	s := newServer(t)
	r := s.doAuth("GET", "/healthz", "", "")
	r.want(t, 200)
	if !strings.Contains(string(r.body), `"ok"`) {
		t.Errorf("healthz body %s", r.body)
	}
}

func TestReadyz(t *testing.T) {
	s := newServer(t, func(c *api.Config) {
		c.Ready = append(c.Ready, api.Check{Name: "redis", Check: func(context.Context) error { return nil }})
	})
	r := s.doAuth("GET", "/readyz", "", "")
	r.want(t, 200)
	var got map[string]string
	if err := json.Unmarshal(r.body, &got); err != nil || got["database"] != "ok" || got["redis"] != "ok" {
		t.Errorf("readyz body %s, want database and redis ok", r.body)
	}

	// A dependency that does not answer makes the process unready. The
	// answer, which needs no token, says which one; why goes to the log.
	var logs bytes.Buffer
	s = newServer(t, func(c *api.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		c.Ready = append(c.Ready, api.Check{Name: "redis", Check: func(context.Context) error {
			return errors.New("dial tcp 10.0.0.7:6379: connection refused")
		}})
	})
	r = s.doAuth("GET", "/readyz", "", "")
	r.want(t, http.StatusServiceUnavailable)
	got = nil
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatalf("readyz body %s: %v", r.body, err)
	}
	if len(got) != 2 || got["database"] != "ok" || got["redis"] != "unavailable" {
		t.Errorf("readyz body %s, want database ok and redis unavailable", r.body)
	}
	if strings.Contains(string(r.body), "10.0.0.7") || strings.Contains(string(r.body), "refused") {
		t.Errorf("readyz body %s leaks the internal error", r.body)
	}
	if l := logs.String(); !strings.Contains(l, "check=redis") || !strings.Contains(l, "10.0.0.7:6379: connection refused") {
		t.Errorf("log %q does not record the failed check and its error", l)
	}
}

// A check that overruns /readyz's budget fails with it rather than hold
// the probe.
func TestReadyzTimeout(t *testing.T) {
	s := newServer(t, func(c *api.Config) {
		c.Ready = append(c.Ready, api.Check{Name: "redis", Check: func(ctx context.Context) error {
			if _, ok := ctx.Deadline(); !ok {
				return errors.New("no deadline")
			}
			<-ctx.Done()
			return ctx.Err()
		}})
	})
	start := time.Now()
	r := s.doAuth("GET", "/readyz", "", "")
	r.want(t, http.StatusServiceUnavailable)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("/readyz took %v", d)
	}
	if !strings.Contains(string(r.body), `"redis":"unavailable"`) {
		t.Errorf("readyz body %s", r.body)
	}
}

func TestUnknownRoute(t *testing.T) {
	s := newServer(t)
	for _, rt := range []route{
		{"GET", "/v1/nope", ""},
		{"GET", "/", ""},
		{"POST", "/v1/installations/dev-1", `{}`},
		{"GET", "/v2/push", ""},
	} {
		s.unchanged(func() {
			r := s.do(rt.method, rt.path, rt.body)
			r.want(t, http.StatusNotFound)
			if e := r.error(t); !strings.Contains(e.Error, rt.path) {
				t.Errorf("%s %s: 404 says %q, want it to name the route", rt.method, rt.path, e.Error)
			}
		})
	}
}

// Malformed bodies are refused alike on every route that reads one.
func TestMalformedBodies(t *testing.T) {
	s := newServer(t)
	for _, path := range []string{"/v1/installations/dev-1", "/v1/mutes/alice/conv-1"} {
		for name, c := range map[string]struct{ body, says string }{
			"empty":          {"", "empty body"},
			"truncated":      {`{"client_id": "al`, "malformed JSON"},
			"not JSON":       {`client_id=alice`, "malformed JSON"},
			"an array":       {`[]`, "malformed JSON"},
			"two objects":    {`{} {}`, "data after the object"},
			"stray brace":    {`{}}`, "data after the object"},
			"unknown field":  {`{"colour": "red"}`, `"colour"`},
			"wrong type":     {`{"app_id": 7}`, "app_id"},
			"trailing comma": {`{"app_id": "default",}`, "malformed JSON"},
		} {
			t.Run(path+"/"+name, func(t *testing.T) {
				s := s.with(t)
				e := s.badRequest("PUT", path, c.body, http.StatusBadRequest)
				if !strings.Contains(e.Error, c.says) {
					t.Errorf("error %q, want it to say %q", e.Error, c.says)
				}
			})
		}
	}
}

func TestBodyOverLimit(t *testing.T) {
	s := newServer(t)
	huge := strings.Repeat("x", maxBodySize)
	for _, rt := range []route{
		{"PUT", "/v1/installations/dev-1", `{"client_id":"alice","provider":"fcm","token":"` + huge + `"}`},
		{"PUT", "/v1/mutes/alice/conv-1", `{"app_id":"` + huge + `"}`},
		{"POST", "/v1/push", `{"message_id":"m1","conversation_id":"c","recipients":["` + huge + `"]}`},
	} {
		e := s.badRequest(rt.method, rt.path, rt.body, http.StatusRequestEntityTooLarge)
		if !strings.Contains(e.Error, fmt.Sprint(maxBodySize)) {
			t.Errorf("%s %s: 413 says %q, want it to name the limit", rt.method, rt.path, e.Error)
		}
	}

	if maxBodySize != api.DefaultMaxBody {
		t.Errorf("DefaultMaxBody = %d, want %d", api.DefaultMaxBody, maxBodySize)
	}

	// The limit is the operator's.
	s = newServer(t, func(c *api.Config) { c.MaxBody = 64 })
	s.badRequest("PUT", "/v1/installations/dev-1", `{"client_id":"alice","provider":"apns","token":"`+apnsTok+`"}`, http.StatusRequestEntityTooLarge)
}

func TestPutInstallation(t *testing.T) {
	s := newServer(t)
	r := s.do("PUT", "/v1/installations/iphone-1", jsonBody(t, map[string]any{
		"client_id": "alice", "provider": "apns", "token": strings.ToUpper(apnsTok),
		"apns_env": "development", "apns_topic": "com.example.chat", "locale": "zh-Hans-CN", "timezone": "Asia/Shanghai",
	}))
	r.want(t, 200)
	var got installations.Installation
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != "iphone-1" || got.AppID != "default" || got.ClientID != "alice" || got.Token != apnsTok ||
		got.APNsEnv != "development" || got.Locale != "zh-Hans-CN" || !got.Valid {
		t.Errorf("PUT answered %+v", got)
	}
	list := s.listInstallations("alice")
	if len(list) != 1 || list[0].ID != "iphone-1" || list[0].APNsEnv != "development" || list[0].Timezone != "Asia/Shanghai" {
		t.Errorf("alice's installations: %+v, want iphone-1", list)
	}

	// An update by the same id; an FCM device of another app.
	s.do("PUT", "/v1/installations/iphone-1", jsonBody(t, map[string]any{"client_id": "alice", "provider": "apns", "token": apnsTok, "locale": "en-US"})).want(t, 200)
	s.do("PUT", "/v1/installations/android-1", jsonBody(t, map[string]any{"app_id": "chat", "client_id": "alice", "provider": "fcm", "token": fcmTok})).want(t, 200)
	if list := s.listInstallations("alice"); len(list) != 1 || list[0].Locale != "en-US" {
		t.Errorf("alice's installations after the update: %+v", list)
	}
	r = s.do("GET", "/v1/installations?client_id=alice&app_id=chat", "")
	r.want(t, 200)
	if !strings.Contains(string(r.body), `"android-1"`) || strings.Contains(string(r.body), `"iphone-1"`) {
		t.Errorf("alice's installations in chat: %s", r.body)
	}

	// A token belongs to one client: a new user of the phone takes it.
	s.do("PUT", "/v1/installations/iphone-2", jsonBody(t, map[string]any{"client_id": "bob", "provider": "apns", "token": apnsTok})).want(t, 200)
	if list := s.listInstallations("alice"); len(list) != 0 {
		t.Errorf("alice still has %+v after bob registered her phone's token", list)
	}
	if list := s.listInstallations("bob"); len(list) != 1 || list[0].ID != "iphone-2" {
		t.Errorf("bob's installations: %+v", list)
	}
}

func TestPutInstallationBadInput(t *testing.T) {
	s := newServer(t)
	// An existing row, which a bad update must leave as it is.
	s.register("dev-1", "alice", "apns", apnsTok)
	valid := func(change map[string]any) string {
		b := map[string]any{"client_id": "alice", "provider": "apns", "token": apnsTok}
		for k, v := range change {
			if v == nil {
				delete(b, k)
			} else {
				b[k] = v
			}
		}
		return jsonBody(t, b)
	}
	hexOf := func(n int) string { return strings.Repeat("ab", n/2) + strings.Repeat("a", n%2) }
	for _, c := range []struct {
		name   string
		id     string
		body   string
		fields map[string]string
	}{
		{"missing fields", "dev-1", `{}`, map[string]string{
			"client_id": "required", "provider": "required", "token": "required"}},
		{"null body", "dev-1", `null`, map[string]string{
			"client_id": "required", "provider": "required", "token": "required"}},
		{"missing token", "dev-1", valid(map[string]any{"token": nil}), map[string]string{"token": "required"}},
		{"unknown provider", "dev-1", valid(map[string]any{"provider": "gcm"}), map[string]string{"provider": `one of "apns", "fcm"`}},
		{"APNs token too short", "dev-1", valid(map[string]any{"token": hexOf(62)}), map[string]string{"token": "APNs token"}},
		{"APNs token odd length", "dev-1", valid(map[string]any{"token": hexOf(65)}), map[string]string{"token": "even number of hex digits"}},
		{"APNs token too long", "dev-1", valid(map[string]any{"token": hexOf(202)}), map[string]string{"token": "64 to 200"}},
		{"APNs token not hex", "dev-1", valid(map[string]any{"token": strings.Repeat("g", 64)}), map[string]string{"token": "hex digits"}},
		{"APNs token with spaces", "dev-1", valid(map[string]any{"token": "<" + apnsTok[:30] + " " + apnsTok[30:60] + ">"}), map[string]string{"token": "APNs token"}},
		{"FCM token with a space", "dev-1", valid(map[string]any{"provider": "fcm", "token": "abc def"}), map[string]string{"token": "FCM token"}},
		{"FCM token not ASCII", "dev-1", valid(map[string]any{"provider": "fcm", "token": "tökén"}), map[string]string{"token": "printable ASCII"}},
		{"FCM token too long", "dev-1", valid(map[string]any{"provider": "fcm", "token": strings.Repeat("x", installations.MaxFCMToken+1)}), map[string]string{"token": "at most 4096"}},
		{"FCM token with newline", "dev-1", valid(map[string]any{"provider": "fcm", "token": "abc\ndef"}), map[string]string{"token": "FCM token"}},
		{"apns_env unknown", "dev-1", valid(map[string]any{"apns_env": "sandbox"}), map[string]string{"apns_env": `"production", "development"`}},
		{"apns_env on FCM", "dev-1", valid(map[string]any{"provider": "fcm", "token": fcmTok, "apns_env": "production"}), map[string]string{"apns_env": "only for provider apns"}},
		{"apns_topic on FCM", "dev-1", valid(map[string]any{"provider": "fcm", "token": fcmTok, "apns_topic": "com.example"}), map[string]string{"apns_topic": "only for provider apns"}},
		{"locale", "dev-1", valid(map[string]any{"locale": "en US"}), map[string]string{"locale": "language tag"}},
		{"platform android on APNs", "dev-1", valid(map[string]any{"platform": "android"}), map[string]string{"platform": `"ios" or empty for provider apns`}},
		{"platform web on APNs", "dev-1", valid(map[string]any{"platform": "web"}), map[string]string{"platform": "for provider apns"}},
		{"platform unknown", "dev-1", valid(map[string]any{"provider": "fcm", "token": fcmTok, "platform": "windows"}), map[string]string{"platform": `one of "ios", "android", "web", or empty`}},
		{"timezone", "dev-1", valid(map[string]any{"timezone": "Mars/Olympus_Mons"}), map[string]string{"timezone": "IANA time zone"}},
		{"timezone Local", "dev-1", valid(map[string]any{"timezone": "Local"}), map[string]string{"timezone": "IANA time zone"}},
		{"client_id too long", "dev-1", valid(map[string]any{"client_id": strings.Repeat("c", installations.MaxClientIDLen+1)}), map[string]string{"client_id": "at most 256 bytes"}},
		{"client_id control character", "dev-1", valid(map[string]any{"client_id": "ali\x00ce"}), map[string]string{"client_id": "control characters"}},
		{"installation id characters", "dev%201", valid(nil), map[string]string{"installation_id": "characters from"}},
		{"installation id too long", strings.Repeat("i", installations.MaxIDLen+1), valid(nil), map[string]string{"installation_id": "at most 128"}},
		{"every mistake at once", "dev-1", valid(map[string]any{"client_id": "", "token": "xyz", "apns_env": "staging", "locale": "en US"}), map[string]string{
			"client_id": "required", "token": "APNs token", "apns_env": "one of", "locale": "language tag"}},
		{"unknown app", "dev-1", valid(map[string]any{"app_id": "nope"}), map[string]string{"app_id": `app "nope" is not configured`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := s.with(t)
			e := s.badRequest("PUT", "/v1/installations/"+c.id, c.body, http.StatusBadRequest)
			hasFields(t, e, c.fields)
		})
	}
	if list := s.listInstallations("alice"); len(list) != 1 || list[0].Token != apnsTok || !list[0].Valid {
		t.Errorf("alice's installation after bad updates: %+v", list)
	}
}

// An FCM device says what it runs on, since the message differs; one that
// does not is Android, and an APNs device is always iOS.
func TestPutInstallationPlatform(t *testing.T) {
	s := newServer(t)
	for _, c := range []struct {
		id, body string
		want     installations.Platform
	}{
		{"browser", `{"client_id":"alice","provider":"fcm","platform":"web","token":"` + fcmTok + `-web"}`, installations.PlatformWeb},
		{"firebase-ios", `{"client_id":"alice","provider":"fcm","platform":"ios","token":"` + fcmTok + `-ios"}`, installations.PlatformIOS},
		{"pixel", `{"client_id":"alice","provider":"fcm","token":"` + fcmTok + `"}`, installations.PlatformAndroid},
		{"iphone", `{"client_id":"alice","provider":"apns","token":"` + apnsTok + `"}`, installations.PlatformIOS},
	} {
		r := s.do("PUT", "/v1/installations/"+c.id, c.body)
		r.want(t, 200)
		var got installations.Installation
		if err := json.Unmarshal(r.body, &got); err != nil {
			t.Fatal(err)
		}
		if got.Platform != c.want {
			t.Errorf("PUT %s answered platform %q, want %q", c.id, got.Platform, c.want)
		}
		if !strings.Contains(string(r.body), `"platform":"`+string(c.want)+`"`) {
			t.Errorf("PUT %s answered %s, without its platform", c.id, r.body)
		}
	}
	byID := make(map[string]installations.Platform)
	for _, in := range s.listInstallations("alice") {
		byID[in.ID] = in.Platform
	}
	want := map[string]installations.Platform{
		"browser": installations.PlatformWeb, "firebase-ios": installations.PlatformIOS,
		"pixel": installations.PlatformAndroid, "iphone": installations.PlatformIOS,
	}
	if !maps.Equal(byID, want) {
		t.Errorf("GET platforms = %v, want %v", byID, want)
	}

	// The browser re-registers as what it now is.
	s.do("PUT", "/v1/installations/browser", `{"client_id":"alice","provider":"fcm","platform":"android","token":"`+fcmTok+`-web"}`).want(t, 200)
	for _, in := range s.listInstallations("alice") {
		if in.ID == "browser" && in.Platform != installations.PlatformAndroid {
			t.Errorf("browser after re-registering as android: %q", in.Platform)
		}
	}
	hasFields(t, s.badRequest("PUT", "/v1/installations/iphone", `{"client_id":"alice","provider":"apns","platform":"android","token":"`+apnsTok+`"}`, http.StatusBadRequest),
		map[string]string{"platform": `"ios" or empty for provider apns`})
}

// PUT names its app in the query, as every other route does, or in the
// body; both at once must agree.
func TestPutAppInQuery(t *testing.T) {
	s := newServer(t)
	inst := `{"client_id":"alice","provider":"fcm","token":"` + fcmTok + `"}`
	s.do("PUT", "/v1/installations/android-1?app_id=chat", inst).want(t, 200)
	s.do("PUT", "/v1/installations/android-2?app_id=chat", `{"app_id":"chat","client_id":"alice","provider":"fcm","token":"`+fcmTok+`-2"}`).want(t, 200)
	s.do("PUT", "/v1/mutes/alice/conv-1?app_id=chat", `{}`).want(t, 200)
	s.do("PUT", "/v1/mutes/alice/conv-2?app_id=chat", `{"app_id":"chat"}`).want(t, 200)
	if list := s.listInstallations("alice"); len(list) != 0 {
		t.Errorf("installations in the default app: %+v", list)
	}
	if list := s.listMutes("alice"); len(list) != 0 {
		t.Errorf("mutes in the default app: %+v", list)
	}
	r := s.do("GET", "/v1/installations?client_id=alice&app_id=chat", "")
	r.want(t, 200)
	if !strings.Contains(string(r.body), `"android-1"`) || !strings.Contains(string(r.body), `"android-2"`) {
		t.Errorf("alice's installations in chat: %s", r.body)
	}
	r = s.do("GET", "/v1/mutes?client_id=alice&app_id=chat", "")
	r.want(t, 200)
	if !strings.Contains(string(r.body), `"conv-1"`) || !strings.Contains(string(r.body), `"conv-2"`) {
		t.Errorf("alice's mutes in chat: %s", r.body)
	}

	for _, c := range []struct {
		name, path, body string
		rule             string
	}{
		{"installation, disagree", "/v1/installations/android-3?app_id=chat", `{"app_id":"default","client_id":"bob","provider":"fcm","token":"` + fcmTok + `-3"}`, "query and body disagree"},
		{"installation, unknown app in query", "/v1/installations/android-3?app_id=nope", inst, `app "nope" is not configured`},
		{"mute, disagree", "/v1/mutes/bob/conv-1?app_id=default", `{"app_id":"chat"}`, "query and body disagree"},
		{"mute, unknown app in query", "/v1/mutes/bob/conv-1?app_id=nope", `{}`, `app "nope" is not configured`},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := s.with(t)
			hasFields(t, s.badRequest("PUT", c.path, c.body, http.StatusBadRequest), map[string]string{"app_id": c.rule})
		})
	}
}

func TestDeleteInstallation(t *testing.T) {
	s := newServer(t)
	s.register("dev-1", "alice", "apns", apnsTok)

	e := s.badRequest("DELETE", "/v1/installations/dev-2", "", http.StatusNotFound)
	if !strings.Contains(e.Error, "not found") {
		t.Errorf("404 says %q", e.Error)
	}
	// dev-1 is not an installation of chat.
	s.badRequest("DELETE", "/v1/installations/dev-1?app_id=chat", "", http.StatusNotFound)
	hasFields(t, s.badRequest("DELETE", "/v1/installations/dev-1?app_id=nope", "", http.StatusBadRequest),
		map[string]string{"app_id": `app "nope" is not configured`})

	r := s.do("DELETE", "/v1/installations/dev-1", "")
	r.want(t, http.StatusNoContent)
	if len(r.body) != 0 {
		t.Errorf("204 with body %s", r.body)
	}
	if list := s.listInstallations("alice"); len(list) != 0 {
		t.Errorf("alice's installations after DELETE: %+v", list)
	}
	s.badRequest("DELETE", "/v1/installations/dev-1", "", http.StatusNotFound)
}

func TestListInstallations(t *testing.T) {
	s := newServer(t)
	hasFields(t, s.badRequest("GET", "/v1/installations", "", http.StatusBadRequest), map[string]string{"client_id": "required"})
	hasFields(t, s.badRequest("GET", "/v1/installations?client_id=", "", http.StatusBadRequest), map[string]string{"client_id": "required"})
	hasFields(t, s.badRequest("GET", "/v1/installations?client_id=alice&app_id=nope", "", http.StatusBadRequest),
		map[string]string{"app_id": `app "nope" is not configured`})

	// A client without devices has an empty list, not null.
	r := s.do("GET", "/v1/installations?client_id=nobody", "")
	r.want(t, 200)
	if got := strings.TrimSpace(string(r.body)); got != `{"installations":[]}` {
		t.Errorf("empty list: %s", got)
	}
}

func TestResetBadge(t *testing.T) {
	s := newServer(t)
	s.register("dev-1", "alice", "apns", apnsTok)
	s.register("dev-2", "alice", "fcm", fcmTok)
	bob := s.register("dev-3", "bob", "fcm", fcmTok+"-bob")
	ctx := context.Background()
	for range 2 {
		if _, err := s.reg.IncrementBadges(ctx, "default", []string{"dev-1", "dev-2", bob.ID}); err != nil {
			t.Fatal(err)
		}
	}

	// Refused without a configured app, and nothing changes.
	hasFields(t, s.badRequest("DELETE", "/v1/clients/alice/badge?app_id=nope", "", http.StatusBadRequest),
		map[string]string{"app_id": `app "nope" is not configured`})

	s.do("DELETE", "/v1/clients/alice/badge", "").want(t, http.StatusNoContent)
	for _, in := range s.listInstallations("alice") {
		if in.Badge != 0 {
			t.Errorf("%s: badge %d after the reset, want 0", in.ID, in.Badge)
		}
	}
	if list := s.listInstallations("bob"); len(list) != 1 || list[0].Badge != 2 {
		t.Errorf("bob's badge changed with alice's reset: %+v", list)
	}
	// Resetting a client without devices, or twice, is not an error.
	s.do("DELETE", "/v1/clients/alice/badge", "").want(t, http.StatusNoContent)
	s.do("DELETE", "/v1/clients/nobody/badge", "").want(t, http.StatusNoContent)
}

func TestPutMute(t *testing.T) {
	s := newServer(t)
	r := s.do("PUT", "/v1/mutes/alice/conv-1", `{}`)
	r.want(t, 200)
	var got mute.Mute
	if err := json.Unmarshal(r.body, &got); err != nil || got.ClientID != "alice" || got.ConversationID != "conv-1" || got.AppID != "default" || got.Until != nil {
		t.Errorf("PUT answered %s (%v)", r.body, err)
	}
	until := t0.Add(time.Hour)
	s.do("PUT", "/v1/mutes/alice/conv-2", jsonBody(t, map[string]any{"until": until, "allow_mentions": true})).want(t, 200)
	s.do("PUT", "/v1/mutes/alice/conv-3", jsonBody(t, map[string]any{"app_id": "chat"})).want(t, 200)

	list := s.listMutes("alice")
	if len(list) != 2 {
		t.Fatalf("alice's mutes: %+v, want conv-1 and conv-2", list)
	}
	if list[0].ConversationID != "conv-1" || list[0].Until != nil || list[0].AllowMentions {
		t.Errorf("first mute %+v, want conv-1 forever", list[0])
	}
	if list[1].ConversationID != "conv-2" || list[1].Until == nil || !list[1].Until.Equal(until) || !list[1].AllowMentions {
		t.Errorf("second mute %+v, want conv-2 until %v letting mentions through", list[1], until)
	}
	r = s.do("GET", "/v1/mutes?client_id=alice&app_id=chat", "")
	r.want(t, 200)
	if !strings.Contains(string(r.body), `"conv-3"`) || strings.Contains(string(r.body), `"conv-1"`) {
		t.Errorf("alice's mutes in chat: %s", r.body)
	}

	// Muting again changes the terms.
	s.do("PUT", "/v1/mutes/alice/conv-2", `{}`).want(t, 200)
	if list := s.listMutes("alice"); len(list) != 2 || list[1].Until != nil || list[1].AllowMentions {
		t.Errorf("after re-muting: %+v", list)
	}
}

func TestPutMuteBadInput(t *testing.T) {
	s := newServer(t)
	for _, c := range []struct {
		name, path, body string
		fields           map[string]string
	}{
		{"until in the past", "/v1/mutes/alice/conv-1", jsonBody(t, map[string]any{"until": t0.Add(-time.Minute)}),
			map[string]string{"until": "must be in the future"}},
		{"until now", "/v1/mutes/alice/conv-1", jsonBody(t, map[string]any{"until": t0}),
			map[string]string{"until": "must be in the future"}},
		{"client_id too long", "/v1/mutes/" + strings.Repeat("c", mute.MaxClientIDLen+1) + "/conv-1", `{}`,
			map[string]string{"client_id": "at most 256 bytes"}},
		{"conversation_id too long", "/v1/mutes/alice/" + strings.Repeat("c", mute.MaxConversationIDLen+1), `{}`,
			map[string]string{"conversation_id": "at most 256 bytes"}},
		{"control characters", "/v1/mutes/ali%07ce/conv%0A1", `{}`,
			map[string]string{"client_id": "control characters", "conversation_id": "control characters"}},
		{"unknown app", "/v1/mutes/alice/conv-1", `{"app_id":"nope"}`,
			map[string]string{"app_id": `app "nope" is not configured`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := s.with(t)
			hasFields(t, s.badRequest("PUT", c.path, c.body, http.StatusBadRequest), c.fields)
		})
	}
	for name, body := range map[string]string{
		"until not a time": `{"until": "tomorrow"}`,
		"until a number":   `{"until": 1741944413}`,
		"mentions a word":  `{"allow_mentions": "yes"}`,
	} {
		e := s.badRequest("PUT", "/v1/mutes/alice/conv-1", body, http.StatusBadRequest)
		if !strings.Contains(e.Error, "malformed JSON") {
			t.Errorf("%s: error %q", name, e.Error)
		}
	}
}

func TestDeleteMute(t *testing.T) {
	s := newServer(t)
	s.do("PUT", "/v1/mutes/alice/conv-1", `{}`).want(t, 200)

	s.badRequest("DELETE", "/v1/mutes/alice/conv-2", "", http.StatusNotFound)
	s.badRequest("DELETE", "/v1/mutes/bob/conv-1", "", http.StatusNotFound)
	s.badRequest("DELETE", "/v1/mutes/alice/conv-1?app_id=chat", "", http.StatusNotFound)
	hasFields(t, s.badRequest("DELETE", "/v1/mutes/alice/conv-1?app_id=nope", "", http.StatusBadRequest),
		map[string]string{"app_id": `app "nope" is not configured`})

	s.do("DELETE", "/v1/mutes/alice/conv-1", "").want(t, http.StatusNoContent)
	if list := s.listMutes("alice"); len(list) != 0 {
		t.Errorf("alice's mutes after DELETE: %+v", list)
	}
	s.badRequest("DELETE", "/v1/mutes/alice/conv-1", "", http.StatusNotFound)
}

func TestListMutes(t *testing.T) {
	s := newServer(t)
	hasFields(t, s.badRequest("GET", "/v1/mutes", "", http.StatusBadRequest), map[string]string{"client_id": "required"})
	hasFields(t, s.badRequest("GET", "/v1/mutes?client_id=alice&app_id=nope", "", http.StatusBadRequest),
		map[string]string{"app_id": `app "nope" is not configured`})
	r := s.do("GET", "/v1/mutes?client_id=nobody", "")
	r.want(t, 200)
	if got := strings.TrimSpace(string(r.body)); got != `{"mutes":[]}` {
		t.Errorf("empty list: %s", got)
	}

	// A mute past its end is not listed.
	s.do("PUT", "/v1/mutes/alice/conv-1", jsonBody(t, map[string]any{"until": t0.Add(time.Second)})).want(t, 200)
	later := newServerOver(t, s, t0.Add(time.Minute))
	if list := later.listMutes("alice"); len(list) != 0 {
		t.Errorf("an expired mute is listed: %+v", list)
	}
}

// newServerOver is a second API over s's stores whose clock reads now.
func newServerOver(t *testing.T, s *server, now time.Time) *server {
	t.Helper()
	h, err := api.New(api.Config{
		Tokens: []secret.Secret{token}, Apps: []string{"default"},
		Installations: s.reg, Mutes: s.mutes, Enqueuer: s.enq, Traces: s.del,
		Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	later := *s
	later.h = h
	return &later
}

func TestPush(t *testing.T) {
	s := newServer(t)
	r := s.do("POST", "/v1/push", jsonBody(t, map[string]any{
		"message_id": "m1", "conversation_id": "conv-1", "from_client_id": "zoe",
		"recipients": []string{"alice", "bob"}, "mentions": []string{"bob"},
		"push": map[string]any{"title": "hi", "badge": "Increment", "ios": map[string]any{"sound": "ping.caf"}},
	}))
	r.want(t, http.StatusAccepted)
	var got map[string]string
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	if got["task_id"] != pushjob.TaskID("default", "m1") || got["message_id"] != "m1" {
		t.Errorf("202 body %s, want the task id %s", r.body, pushjob.TaskID("default", "m1"))
	}
	jobs := s.enq.calls()
	if len(jobs) != 1 {
		t.Fatalf("enqueued %d jobs, want 1", len(jobs))
	}
	j := jobs[0]
	if j.AppID != "default" || j.Priority != pushjob.PriorityNormal || j.Timestamp.IsZero() ||
		!slices.Equal(j.Recipients, []string{"alice", "bob"}) || j.Push == nil || j.Push.Badge == nil || !j.Push.Badge.Increment ||
		j.Push.IOS == nil || j.Push.IOS.Sound != "ping.caf" {
		t.Errorf("enqueued %+v", j)
	}

	// Another app's job, and one with exactly the most recipients.
	s.do("POST", "/v1/push", jsonBody(t, map[string]any{
		"app_id": "chat", "message_id": "m2", "conversation_id": "c", "recipients": []string{"alice"}, "priority": "high",
	})).want(t, http.StatusAccepted)
	s.do("POST", "/v1/push", jsonBody(t, map[string]any{
		"message_id": "m3", "conversation_id": "c", "recipients": recipients(pushjob.MaxRecipients),
	})).want(t, http.StatusAccepted)
	if n := len(s.enq.calls()); n != 3 {
		t.Errorf("enqueued %d jobs, want 3", n)
	}
}

// A job of a million recipients is accepted, and one of a million ids of
// 60 bytes fits the default body limit.
func TestPushLargestJob(t *testing.T) {
	s := newServer(t)
	ids := make([]string, pushjob.MaxRecipients)
	for i := range ids {
		ids[i] = fmt.Sprintf("u%07d", i)
	}
	body := jsonBody(t, map[string]any{"message_id": "m-big", "conversation_id": "c", "recipients": ids})
	s.do("POST", "/v1/push", body).want(t, http.StatusAccepted)
	if jobs := s.enq.calls(); len(jobs) != 1 || len(jobs[0].Recipients) != pushjob.MaxRecipients {
		t.Errorf("enqueued %d jobs", len(jobs))
	}

	for i := range ids {
		id := fmt.Sprintf("user-%07d-", i)
		ids[i] = id + strings.Repeat("x", 60-len(id))
	}
	body = jsonBody(t, map[string]any{
		"message_id": strings.Repeat("m", pushjob.MaxMessageIDLen), "conversation_id": strings.Repeat("c", pushjob.MaxIDLen),
		"from_client_id": strings.Repeat("f", pushjob.MaxIDLen), "recipients": ids,
		"push": map[string]any{"title": strings.Repeat("t", 1000), "body": strings.Repeat("b", pushjob.MaxTextLen)},
	})
	if len(body) > maxBodySize {
		t.Errorf("a million 60-byte ids make a body of %d bytes, over the default limit of %d", len(body), maxBodySize)
	}
}

func recipients(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("user-%05d", i)
	}
	return out
}

func TestPushBadJobs(t *testing.T) {
	s := newServer(t)
	valid := func(change map[string]any) string {
		b := map[string]any{"message_id": "m1", "conversation_id": "conv-1", "recipients": []string{"alice"}}
		for k, v := range change {
			if v == nil {
				delete(b, k)
			} else {
				b[k] = v
			}
		}
		return jsonBody(t, b)
	}
	for _, c := range []struct {
		name   string
		body   string
		fields map[string]string
	}{
		{"empty body", "", map[string]string{"": "empty body"}},
		{"malformed JSON", `{"message_id": "m1", "recipients": [`, map[string]string{"": "malformed JSON"}},
		{"not JSON", `message_id=m1`, map[string]string{"": "malformed JSON"}},
		{"two jobs", valid(nil) + valid(nil), map[string]string{"": "data after the job"}},
		{"null", `null`, map[string]string{"": "want a JSON object"}},
		{"an array", `[]`, map[string]string{"": "want an object"}},
		{"missing fields", `{}`, map[string]string{
			"message_id": "required", "conversation_id": "required", "recipients": "required"}},
		{"empty recipients", valid(map[string]any{"recipients": []string{}}), map[string]string{"recipients": "required"}},
		{"unknown field", valid(map[string]any{"colour": "red"}), map[string]string{"colour": "unknown field"}},
		{"unknown nested field", valid(map[string]any{"push": map[string]any{"ios": map[string]any{"colour": "red"}}}),
			map[string]string{"push.ios.colour": "unknown field"}},
		{"field in the wrong case", `{"Message_ID":"m1","conversation_id":"c","recipients":["a"]}`,
			map[string]string{"Message_ID": "unknown field"}},
		{"repeated key", `{"message_id":"m1","message_id":"m2","conversation_id":"c","recipients":["a"]}`,
			map[string]string{"message_id": "repeated key"}},
		{"recipients not a list", valid(map[string]any{"recipients": "alice"}), map[string]string{"recipients": "want an array"}},
		{"recipient not a string", valid(map[string]any{"recipients": []any{"alice", 7}}), map[string]string{"recipients[1]": "want a string"}},
		{"bad badge", valid(map[string]any{"push": map[string]any{"badge": "Twice"}}), map[string]string{"push.badge": `"Increment"`}},
		{"negative badge", valid(map[string]any{"push": map[string]any{"badge": -1}}), map[string]string{"push.badge": "must not be negative"}},
		{"bad expires_at", valid(map[string]any{"expires_at": "tomorrow"}), map[string]string{"expires_at": "RFC 3339"}},
		{"too many recipients", valid(map[string]any{"recipients": recipients(pushjob.MaxRecipients + 1)}),
			map[string]string{"recipients": "at most 1000000 recipients"}},
		{"unknown app", valid(map[string]any{"app_id": "nope"}), map[string]string{"app_id": `app "nope" is not configured`}},
		{"malformed app id", valid(map[string]any{"app_id": "no pe"}), map[string]string{"app_id": "must match"}},
		{"reserved data key", valid(map[string]any{"push": map[string]any{"data": map[string]any{"aps": 1, "google.x": 2}}}),
			map[string]string{"push.data": "reserved"}},
		{"every mistake at once", jsonBody(t, map[string]any{
			"app_id": "nope", "message_id": "", "conversation_id": "conv-1",
			"recipients": []string{"alice", "alice", ""}, "priority": "urgent", "ttl_seconds": -1,
		}), map[string]string{
			"message_id":    "required",
			"recipients[1]": "duplicate of recipients[0]",
			"recipients[2]": "must not be empty",
			"priority":      `one of "high", "normal", "low"`,
			"ttl_seconds":   "must not be negative",
			"app_id":        `app "nope" is not configured`,
		}},
		{"ttl and expiry", valid(map[string]any{"ttl_seconds": 60, "expires_at": t0}),
			map[string]string{"expires_at": "not both"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := s.with(t)
			e := s.badRequest("POST", "/v1/push", c.body, http.StatusBadRequest)
			if e.Error != "invalid job" {
				t.Errorf("error %q, want \"invalid job\"", e.Error)
			}
			hasFields(t, e, c.fields)
		})
	}
}

// The same message twice is refused with 409, and the answer names the
// task that holds it, so a client retrying after a lost reply can treat
// it as done.
func TestPushDuplicate(t *testing.T) {
	s := newServer(t)
	s.enq.err = fmt.Errorf("%w: task %s", pushjob.ErrDuplicate, pushjob.TaskID("default", "m1"))
	r := s.do("POST", "/v1/push", `{"message_id":"m1","conversation_id":"c","recipients":["alice"]}`)
	r.want(t, http.StatusConflict)
	e := r.error(t)
	if !strings.Contains(e.Error, "m1") || !strings.Contains(e.Error, "already enqueued") {
		t.Errorf("409 says %q", e.Error)
	}
	if e.TaskID != pushjob.TaskID("default", "m1") {
		t.Errorf("409 names task %q, want %q", e.TaskID, pushjob.TaskID("default", "m1"))
	}
}

// A queue that fails is a 500 that does not leak its error.
func TestPushQueueDown(t *testing.T) {
	s := newServer(t)
	s.enq.err = errors.New("dial tcp 10.0.0.7:6379: connection refused")
	r := s.do("POST", "/v1/push", `{"message_id":"m1","conversation_id":"c","recipients":["alice"]}`)
	r.want(t, http.StatusInternalServerError)
	if e := r.error(t); strings.Contains(e.Error, "10.0.0.7") {
		t.Errorf("500 leaks the internal error: %q", e.Error)
	}
}

func TestTrace(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	rows := []installations.Delivery{
		{InstallationID: "iphone-alice", ClientID: "alice", Outcome: "delivered", ProviderID: "apns-1", At: t0},
		{ClientID: "dave", Outcome: "muted", At: t0},
		{InstallationID: "iphone-hank", ClientID: "hank", Outcome: "invalid_token", Reason: "Unregistered", At: t0},
	}
	if err := s.del.Record(ctx, "default", "m1", rows); err != nil {
		t.Fatal(err)
	}
	r := s.do("GET", "/v1/messages/m1", "")
	r.want(t, 200)
	var got struct {
		AppID      string                   `json:"app_id"`
		MessageID  string                   `json:"message_id"`
		Deliveries []installations.Delivery `json:"deliveries"`
	}
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	if got.AppID != "default" || got.MessageID != "m1" || len(got.Deliveries) != 3 {
		t.Fatalf("trace %s", r.body)
	}
	byClient := make(map[string]installations.Delivery)
	for _, d := range got.Deliveries {
		byClient[d.ClientID] = d
	}
	if d := byClient["hank"]; d.Outcome != "invalid_token" || d.Reason != "Unregistered" || d.InstallationID != "iphone-hank" {
		t.Errorf("hank's row %+v", d)
	}
	if d := byClient["dave"]; d.Outcome != "muted" || d.InstallationID != "" {
		t.Errorf("dave's row %+v", d)
	}

	// Another app's message of the same id is another message.
	r = s.do("GET", "/v1/messages/m1?app_id=chat", "")
	r.want(t, 200)
	if !strings.Contains(string(r.body), `"deliveries":[]`) {
		t.Errorf("chat's m1: %s", r.body)
	}
	hasFields(t, s.badRequest("GET", "/v1/messages/m1?app_id=nope", "", http.StatusBadRequest),
		map[string]string{"app_id": `app "nope" is not configured`})

	// Without a trace store the route says so.
	s = newServer(t, func(c *api.Config) { c.Traces = nil })
	s.badRequest("GET", "/v1/messages/m1", "", http.StatusNotFound)
}

// TestBodyMistakesNameTheField: a body of well-formed JSON with a wrong
// value says which field and what it wants, in the API's words.
func TestBodyMistakesNameTheField(t *testing.T) {
	s := newServer(t)
	for _, c := range []struct {
		path, body, field, rule string
	}{
		{"/v1/installations/dev-1", `{"client_id": "alice", "token": 7}`, "token", "want a string"},
		{"/v1/installations/dev-1", `{"colour": "red"}`, "colour", "unknown field"},
		{"/v1/mutes/alice/conv-1", `{"until": "tomorrow"}`, "until", "RFC 3339"},
		{"/v1/mutes/alice/conv-1", `{"allow_mentions": "yes"}`, "allow_mentions", "true or false"},
	} {
		e := s.badRequest("PUT", c.path, c.body, http.StatusBadRequest)
		hasFields(t, e, map[string]string{c.field: c.rule})
		if strings.Contains(e.Error, "Go struct") || strings.Contains(e.Error, "installationBody") {
			t.Errorf("%s: error %q speaks of Go types", c.body, e.Error)
		}
	}
}

// TestIDsInPathAndQuery: an id no device or mute can have is a 400 naming
// it, on every route, never a 500 from the database.
func TestIDsInPathAndQuery(t *testing.T) {
	s := newServer(t)
	for _, c := range []struct{ method, path, field string }{
		{"DELETE", "/v1/installations/dev%00", "id"},
		{"GET", "/v1/installations?client_id=al%00ice", "client_id"},
		{"GET", "/v1/installations", "client_id"},
		{"DELETE", "/v1/clients/al%C2%A0ice/badge", "client_id"},
		{"DELETE", "/v1/mutes/alice/conv%00", "conversation_id"},
		{"GET", "/v1/mutes?client_id=al%00ice", "client_id"},
		{"GET", "/v1/messages/m%00", "message_id"},
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			hasFields(t, s.badRequest(c.method, c.path, "", http.StatusBadRequest), map[string]string{c.field: ""})
		})
	}
}

// TestRegistryAndJobsAgreeOnIDs: an id a device can be registered under can
// be named in a job, and one a job refuses cannot be registered: U+00A0
// (no-break space) is neither.
func TestRegistryAndJobsAgreeOnIDs(t *testing.T) {
	s := newServer(t)
	e := s.badRequest("PUT", "/v1/installations/dev-1", jsonBody(t, map[string]any{
		"client_id": "al\u00a0ice", "provider": "apns", "token": strings.Repeat("ab", 32),
	}), http.StatusBadRequest)
	hasFields(t, e, map[string]string{"client_id": "invisible"})
	e = s.badRequest("PUT", "/v1/mutes/al%C2%A0ice/conv-1", `{}`, http.StatusBadRequest)
	hasFields(t, e, map[string]string{"client_id": "invisible"})
}
