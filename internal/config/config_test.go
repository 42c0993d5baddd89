package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/pushd/pushd/internal/content"
	"github.com/pushd/pushd/internal/secret"
	"github.com/pushd/pushd/pushjob"
)

// minimal is the smallest valid config.
const minimal = `
api_tokens: ["0123456789abcdef"]
apps:
  - id: default
    apns: {key_file: k.p8, key_id: ABCDEFGHIJ, team_id: TEAM123456, topic: com.example.chat}
`

// load writes yaml to a config file in a fresh directory and loads it.
func load(t *testing.T, yaml string, env ...string) (*Config, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pushd.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return Load(path, env)
}

// problemsOf loads yaml and returns its problems as strings; it fails the test
// when the config loads or fails other than with an *Error.
func problemsOf(t *testing.T, yaml string, env ...string) []string {
	t.Helper()
	_, err := load(t, yaml, env...)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want an *Error", err)
	}
	var out []string
	for _, p := range e.Problems {
		out = append(out, p.String())
	}
	return out
}

func TestLoadFull(t *testing.T) {
	const full = `
listen: ":9090"
api_tokens: ["0123456789abcdef", "fedcba9876543210-second"]
redis: {addr: "redis.internal:6380", db: 2, password: "s3cret"}
database: {driver: postgres, dsn: "postgres://pushd:pw@db:5432/pushd"}
worker:
  concurrency: 64
  chunk_size: 5000
  queues: {push-high: 10, push-normal: 5, push-low: 1}
  shutdown_timeout: 1m30s
apps:
  - id: chat
    apns:
      key_file: certs/chat/AuthKey_ABCDEFGHIJ.p8
      key_id: ABCDEFGHIJ
      team_id: TEAM123456
      topic: com.example.chat
      production_url: https://127.0.0.1:8443
      development_url: https://127.0.0.1:8444
      ca_file: /etc/pushsim/ca.pem
    fcm:
      credentials_file: certs/chat/fcm.json
      project_id: example-chat
      endpoint: https://127.0.0.1:8445
    defaults:
      alert: "${fromClientId}: new message"
      title: "${fromClientId}"
      body: "in ${convId}"
      sound: ping.caf
      category: MESSAGE
      badge: Increment
      data: {kind: chat, n: 1, nested: {at: "${timestamp}"}}
  - id: android-only
    fcm: {credentials_file: /abs/fcm.json}
    defaults: {badge: 3}
`
	c, err := load(t, full)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Listen:    ":9090",
		APITokens: []secret.Secret{"0123456789abcdef", "fedcba9876543210-second"},
		Redis:     Redis{Addr: "redis.internal:6380", DB: 2, Password: "s3cret"},
		Database:  Database{Driver: "postgres", Path: filepath.Join(c.Dir, "data/pushd.db"), DSN: "postgres://pushd:pw@db:5432/pushd", DeliveryRetention: 7 * 24 * time.Hour},
		Worker: Worker{
			Concurrency:       64,
			ChunkSize:         5000,
			Queues:            map[string]int{"push-high": 10, "push-normal": 5, "push-low": 1},
			ShutdownTimeout:   90 * time.Second,
			TaskCheckInterval: 5 * time.Millisecond,
			ThrottleMaxWait:   24 * time.Hour,
		},
		Apps: []App{
			{
				ID: "chat",
				APNs: &APNs{
					KeyFile: filepath.Join(c.Dir, "certs/chat/AuthKey_ABCDEFGHIJ.p8"), KeyID: "ABCDEFGHIJ", TeamID: "TEAM123456",
					Topic: "com.example.chat", ProductionURL: "https://127.0.0.1:8443", DevelopmentURL: "https://127.0.0.1:8444",
					CAFile: "/etc/pushsim/ca.pem",
				},
				FCM: &FCM{CredentialsFile: filepath.Join(c.Dir, "certs/chat/fcm.json"), ProjectID: "example-chat", Endpoint: "https://127.0.0.1:8445"},
				Defaults: content.Defaults{
					Alert: "${fromClientId}: new message", Title: "${fromClientId}", Body: "in ${convId}",
					Sound: "ping.caf", Category: "MESSAGE", Badge: &pushjob.Badge{Increment: true},
					Data: map[string]any{"kind": "chat", "n": 1, "nested": map[string]any{"at": "${timestamp}"}},
				},
			},
			{
				ID:  "android-only",
				FCM: &FCM{CredentialsFile: "/abs/fcm.json"},
				// The keys the app gives replace the default content's;
				// the rest stay.
				Defaults: content.Defaults{Title: "${fromClientId}", Body: "New message", Sound: "default", Badge: &pushjob.Badge{Value: 3}},
			},
		},
		File: c.File,
		Dir:  c.Dir,
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got\n%#v\nwant\n%#v", c, want)
	}
	if !filepath.IsAbs(c.Dir) {
		t.Errorf("Dir %q is not absolute", c.Dir)
	}
	if c.DatabaseDriver() != DriverPostgres {
		t.Errorf("DatabaseDriver = %q", c.DatabaseDriver())
	}
	if a, ok := c.App("android-only"); !ok || a.FCM == nil {
		t.Errorf("App(android-only) = %+v, %v", a, ok)
	}
	if _, ok := c.App("nope"); ok {
		t.Error("App(nope) found")
	}
}

func TestLoadMinimalTakesDefaults(t *testing.T) {
	c, err := load(t, minimal)
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	if c.Listen != d.Listen || c.Redis != d.Redis || !reflect.DeepEqual(c.Worker, d.Worker) {
		t.Errorf("defaults not applied: %+v", c)
	}
	if c.Database.Path != filepath.Join(c.Dir, "data", "pushd.db") || c.DatabaseDriver() != DriverSQLite {
		t.Errorf("database = %+v, driver %q", c.Database, c.DatabaseDriver())
	}
	if !reflect.DeepEqual(c.Apps[0].Defaults, DefaultContent()) {
		t.Errorf("app without defaults: %+v, want %+v", c.Apps[0].Defaults, DefaultContent())
	}
	if !reflect.DeepEqual(c.Worker.Queues, pushjob.Queues()) {
		t.Errorf("queues = %v, want pushjob's", c.Worker.Queues)
	}
}

func TestDefaultDoesNotValidate(t *testing.T) {
	// Default has no tokens and no apps: pushd needs a file.
	got := Default().validate()
	var keys []string
	for _, p := range got {
		keys = append(keys, p.Key)
	}
	if !reflect.DeepEqual(keys, []string{"api_tokens", "apps"}) {
		t.Errorf("Default's problems: %v", got)
	}
}

func TestExampleConfig(t *testing.T) {
	path := filepath.Join("..", "..", "pushd.example.yaml")
	c, err := Load(path, []string{"PUSHD_API_TOKEN=an-example-token-of-32-characters"})
	if err != nil {
		t.Fatal(err)
	}
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	if c.Dir != root {
		t.Errorf("Dir = %q, want %q", c.Dir, root)
	}
	a, ok := c.App("default")
	if !ok || a.APNs == nil || a.FCM == nil {
		t.Fatalf("app default: %+v", a)
	}
	if want := filepath.Join(root, "certs/default/AuthKey_XXXXXXXXXX.p8"); a.APNs.KeyFile != want {
		t.Errorf("key file %q, want %q", a.APNs.KeyFile, want)
	}
	if !reflect.DeepEqual(a.Defaults, DefaultContent()) {
		t.Errorf("the example's defaults %+v differ from DefaultContent %+v; keep them in step", a.Defaults, DefaultContent())
	}
	d := Default()
	if c.Listen != d.Listen || c.Redis != d.Redis || !reflect.DeepEqual(c.Worker, d.Worker) || c.Database.Driver != DriverSQLite {
		t.Errorf("the example's values differ from Default's; keep them in step:\n%s", c.Redacted())
	}

	// Without the token it names the variable.
	_, err = Load(path, nil)
	if err == nil || !strings.Contains(err.Error(), "api_tokens[0]: environment variable PUSHD_API_TOKEN is not set (line ") {
		t.Errorf("without PUSHD_API_TOKEN: %v", err)
	}
	// Its credentials are placeholders.
	if err := c.CheckFiles(); err == nil || !strings.Contains(err.Error(), "apps[0].apns.key_file: cannot read") {
		t.Errorf("CheckFiles = %v", err)
	}
}

func TestValidationRules(t *testing.T) {
	app := func(s string) string {
		return "api_tokens: [\"0123456789abcdef\"]\napps:\n" + s
	}
	tests := []struct {
		name string
		yaml string
		env  []string
		want []string
	}{
		{"listen", "listen: localhost\n" + minimal, nil,
			[]string{"listen: must be host:port, such as 127.0.0.1:8080: address localhost: missing port in address (line 1)"}},
		{"listen port", "listen: \":http\"\n" + minimal, nil, []string{`listen: port "http" must be a number from 0 to 65535 (line 1)`}},
		{"no token", "apps: [{id: a, fcm: {credentials_file: f.json}}]", nil, []string{"api_tokens: at least one token is required"}},
		{"short token", strings.Replace(minimal, "0123456789abcdef", "short", 1), nil,
			[]string{"api_tokens[0]: must be at least 16 characters, not 5 (line 2)"}},
		{"token with space", strings.Replace(minimal, "0123456789abcdef", "0123456789 abcdef", 1), nil,
			[]string{"api_tokens[0]: must be printable ASCII without spaces, as an HTTP header carries it (line 2)"}},
		{"redis", "redis: {addr: '', db: -1}\n" + minimal, nil,
			[]string{"redis.addr: required (line 1)", "redis.db: must not be negative (line 1)"}},
		{"postgres without dsn", "database: {driver: postgres}\n" + minimal, nil,
			[]string{"database.dsn: required when driver is postgres (line 1)"}},
		{"sqlite without path", "database: {driver: sqlite, path: ''}\n" + minimal, nil,
			[]string{"database.path: required when driver is sqlite (line 1)"}},
		{"sqlite with dsn", "database: {driver: sqlite, dsn: 'postgres://x@y/z'}\n" + minimal, nil,
			[]string{"database.dsn: set, but driver is sqlite: set driver to postgres, or remove dsn (line 1)"}},
		{"driver", "database: {driver: mysql}\n" + minimal, nil, []string{`database.driver: must be sqlite or postgres, not "mysql" (line 1)`}},
		{"concurrency low", "worker: {concurrency: 0}\n" + minimal, nil, []string{"worker.concurrency: must be between 1 and 10000 (line 1)"}},
		{"concurrency high", "worker: {concurrency: 10001}\n" + minimal, nil, []string{"worker.concurrency: must be between 1 and 10000 (line 1)"}},
		{"queues", "worker: {queues: {push-high: 0, push-normal: 1, push-lo: 1}}\n" + minimal, nil, []string{
			"worker.queues.push-high: weight must be at least 1 (line 1)",
			"worker.queues.push-lo: unknown queue; pushd's are push-high, push-normal and push-low (line 1)",
			"worker.queues: missing push-low: its jobs would never run (line 1)",
		}},
		{"chunk size low", "worker: {chunk_size: 99}\n" + minimal, nil, []string{"worker.chunk_size: must be between 100 and 1000000 (line 1)"}},
		{"chunk size high", "worker: {chunk_size: 1000001}\n" + minimal, nil, []string{"worker.chunk_size: must be between 100 and 1000000 (line 1)"}},
		{"shutdown timeout", "worker: {shutdown_timeout: 0s}\n" + minimal, nil, []string{"worker.shutdown_timeout: must be positive (line 1)"}},
		{"pprof on the network", "pprof_listen: 0.0.0.0:6060\n" + minimal, nil, []string{`pprof_listen: must be a loopback address such as 127.0.0.1:6060, not "0.0.0.0:6060" (line 1)`}},
		{"pprof without host", "pprof_listen: :6060\n" + minimal, nil, []string{`pprof_listen: must be a loopback address such as 127.0.0.1:6060, not ":6060" (line 1)`}},
		{"task check interval low", "worker: {task_check_interval: 500us}\n" + minimal, nil, []string{"worker.task_check_interval: must be between 1ms and 10s (line 1)"}},
		{"task check interval high", "worker: {task_check_interval: 1m}\n" + minimal, nil, []string{"worker.task_check_interval: must be between 1ms and 10s (line 1)"}},
		{"no apps", "api_tokens: [\"0123456789abcdef\"]\napps: []", nil, []string{"apps: at least one app is required (line 2)"}},
		{"app without credentials", app("  - id: a\n"), nil, []string{"apps[0]: needs apns or fcm credentials, or both (line 3)"}},
		{"app id", app("  - fcm: {credentials_file: f}\n  - id: 'bad id'\n    fcm: {credentials_file: f}\n"), nil, []string{
			"apps[0].id: required (line 3)",
			"apps[1].id: must match [A-Za-z0-9_.-]{1,64}, as job app_ids do (line 4)",
		}},
		{"duplicate app", app("  - {id: a, fcm: {credentials_file: f}}\n  - {id: b, fcm: {credentials_file: f}}\n  - {id: a, fcm: {credentials_file: f}}\n"), nil,
			[]string{`apps[2].id: duplicate app id "a" (also apps[0]) (line 5)`}},
		{"apns key id", app("  - id: a\n    apns: {key_file: k.p8, team_id: TEAM123456, topic: t}\n"), nil,
			[]string{"apps[0].apns.key_id: required when key_file is set (line 4)"}},
		{"apns formats", app("  - id: a\n    apns:\n      key_file: k.p8\n      key_id: abc\n      team_id: TEAM12345678\n      topic: a b\n      production_url: ftp://x\n      development_url: localhost:8443\n"), nil, []string{
			"apps[0].apns.key_id: must be 10 upper-case letters and digits, as Apple shows it (line 6)",
			"apps[0].apns.team_id: must be 10 upper-case letters and digits, as Apple shows it (line 7)",
			"apps[0].apns.topic: must not contain spaces (line 8)",
			"apps[0].apns.production_url: must be an http or https URL with a host, such as https://127.0.0.1:8443 (line 9)",
			"apps[0].apns.development_url: must be an http or https URL with a host, such as https://127.0.0.1:8443 (line 10)",
		}},
		{"apns without key file", app("  - id: a\n    apns: {topic: t}\n"), nil,
			[]string{"apps[0].apns.key_file: required (the .p8 token key), unless certificate, production_certificate or development_certificate is set (line 4)"}},
		{"apns without topic", app("  - id: a\n    apns: {key_file: k, key_id: ABCDEFGHIJ, team_id: TEAM123456}\n"), nil,
			[]string{"apps[0].apns.topic: required (the app's bundle id) (line 4)"}},
		{"apns key and certificate", app("  - id: a\n    apns: {key_file: k.p8, key_id: ABCDEFGHIJ, team_id: TEAM123456, topic: t, certificate: {file: c.p12}}\n"), nil,
			[]string{"apps[0].apns.certificate: set together with key_file: an app uses a .p8 key or certificates, not both (line 4)"}},
		{"apns universal and per-environment certificates", app("  - id: a\n    apns:\n      certificate: {file: c.p12}\n      development_certificate: {file: d.p12}\n"), nil,
			[]string{"apps[0].apns.development_certificate: set together with certificate: use one universal certificate, or production_certificate and/or development_certificate (line 6)"}},
		{"apns certificate without file", app("  - id: a\n    apns:\n      production_certificate: {password: x}\n      key_id: ABCDEFGHIJ\n"), nil, []string{
			"apps[0].apns.production_certificate.file: required (the .p12 or PEM certificate file) (line 5)",
			"apps[0].apns.key_id: only used with key_file, not with certificates (line 6)",
		}},
		{"fcm", app("  - id: a\n    fcm: {endpoint: 'not a url'}\n"), nil, []string{
			"apps[0].fcm.credentials_file: required (the service account's JSON key), unless application_default is true (line 4)",
			"apps[0].fcm.endpoint: must be an http or https URL with a host, such as https://127.0.0.1:8443 (line 4)",
		}},
		{"fcm file and application default", app("  - id: a\n    fcm: {credentials_file: f, application_default: true}\n"), nil, []string{
			"apps[0].fcm.application_default: not with credentials_file: set one (line 4)",
		}},
		{"defaults", app("  - id: a\n    fcm: {credentials_file: f}\n    defaults:\n      badge: -1\n      data: {aps: 1, google.x: 2, ok: 3}\n"), nil, []string{
			"apps[0].defaults.badge: must not be negative (line 6)",
			"apps[0].defaults.data.aps: reserved by APNs (line 7)",
			"apps[0].defaults.data.google.x: reserved by FCM (line 7)",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := problemsOf(t, tc.yaml, tc.env...)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("problems:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestAllProblemsAtOnce(t *testing.T) {
	const bad = `
listen: nope
api_tokens: [short]
redis: {addr: ""}
database: {driver: postgres}
worker: {concurrency: 0, shutdown_timeout: 10}
apps:
  - id: a
    apns: {key_file: k.p8, team_id: TEAM123456, topic: t}
    colour: blue
  - id: a
`
	_, err := load(t, bad)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v", err)
	}
	want := []string{
		"listen: must be host:port",
		"api_tokens[0]: must be at least 16 characters",
		"redis.addr: required",
		"database.dsn: required when driver is postgres",
		"worker.concurrency: must be between 1 and 10000",
		"worker.shutdown_timeout: must be a duration such as 30s or 1m30s (line 6)",
		"apps[0].apns.key_id: required when key_file is set",
		"apps[0].colour: unknown key (line 10)",
		"apps[1]: needs apns or fcm credentials, or both",
		`apps[1].id: duplicate app id "a" (also apps[0])`,
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "config ") || !strings.Contains(msg, "10 problems:") {
		t.Errorf("error starts %q", msg[:min(len(msg), 60)])
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("missing %q in\n%s", w, msg)
		}
	}
	if len(e.Problems) != len(want) {
		t.Errorf("%d problems, want %d:\n%s", len(e.Problems), len(want), msg)
	}
	// In file order.
	for i := 1; i < len(e.Problems); i++ {
		if e.Problems[i].Line < e.Problems[i-1].Line {
			t.Errorf("problems out of order:\n%s", msg)
			break
		}
	}
}

func TestUnknownKeys(t *testing.T) {
	got := problemsOf(t, minimal+`
worker:
  concurency: 5
  queues: {push-high: 1, push-normal: 1, push-low: 1}
redis: {address: "x:1"}
frobnicate: true
`)
	want := []string{
		"worker.concurency: unknown key (did you mean concurrency?) (line 8)",
		"redis.address: unknown key (did you mean addr?) (line 10)",
		"frobnicate: unknown key (line 11)",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestTypeErrors(t *testing.T) {
	got := problemsOf(t, minimal+`
listen: [a, b]
redis: {db: two}
worker: {concurrency: 1.5, shutdown_timeout: 30, queues: [push-high]}
`)
	want := []string{
		"listen: must be a string (line 7)",
		"redis.db: must be a whole number (line 8)",
		"worker.concurrency: must be a whole number (line 9)",
		"worker.shutdown_timeout: must be a duration such as 30s or 1m30s (line 9)",
		"worker.queues: must be a mapping (line 9)",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}

	got = problemsOf(t, "api_tokens: [\"0123456789abcdef\"]\napps: {id: x}\n")
	if want := []string{"apps: must be a list (line 2)"}; !reflect.DeepEqual(got, want) {
		t.Errorf("apps as a mapping: got %q, want %q", got, want)
	}
	got = problemsOf(t, "- just\n- a list\n")
	if want := []string{"must be a mapping (line 1)"}; !reflect.DeepEqual(got, want) {
		t.Errorf("a list document: got %q, want %q", got, want)
	}
	got = problemsOf(t, "api_tokens: [\"0123456789abcdef\"]\napps:\n  - id: a\n    fcm: {credentials_file: f}\n    defaults: {badge: lots}\n")
	if want := []string{`apps[0].defaults.badge: must be a whole number or "Increment" (line 5)`}; !reflect.DeepEqual(got, want) {
		t.Errorf("badge: got %q, want %q", got, want)
	}
}

func TestDuplicateKeys(t *testing.T) {
	got := problemsOf(t, minimal+"listen: a:1\nlisten: b:2\n")
	if want := []string{"listen: duplicate key (first at line 6) (line 7)"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestSyntaxError(t *testing.T) {
	_, err := load(t, "listen: [unclosed\n")
	if err == nil || !strings.Contains(err.Error(), "line") || errors.As(err, new(*Error)) {
		t.Errorf("err = %v, want a YAML syntax error with its line", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v", err)
	}
}

func TestAnchorsAndMerges(t *testing.T) {
	c, err := load(t, `
api_tokens: ["0123456789abcdef"]
x-apns: &apns
  key_id: ABCDEFGHIJ
  team_id: TEAM123456
  topic: com.example.chat
apps:
  - id: a
    apns:
      <<: *apns
      key_file: a.p8
  - id: b
    apns:
      <<: *apns
      key_file: b.p8
      topic: com.example.other
`)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := c.Apps[0].APNs, c.Apps[1].APNs; a.KeyID != "ABCDEFGHIJ" || a.Topic != "com.example.chat" || b.Topic != "com.example.other" {
		t.Errorf("merged from an x- key: %+v %+v", a, b)
	}

	// Only top-level x- keys are extensions.
	got := problemsOf(t, minimal+"redis: {x-note: hi}\n")
	if want := []string{"redis.x-note: unknown key (line 6)"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}

	c, err = load(t, `
api_tokens: ["0123456789abcdef"]
apps:
  - id: a
    apns: &apns
      key_file: a.p8
      key_id: ABCDEFGHIJ
      team_id: TEAM123456
      topic: com.example.chat
  - id: b
    apns:
      <<: *apns
      key_file: b.p8
      topic: com.example.other
`)
	if err != nil {
		t.Fatal(err)
	}
	b := c.Apps[1].APNs
	if b.KeyID != "ABCDEFGHIJ" || b.Topic != "com.example.other" || b.KeyFile != filepath.Join(c.Dir, "b.p8") {
		t.Errorf("merged apns = %+v", b)
	}
}

func TestEnvOverrides(t *testing.T) {
	env := []string{
		"PUSHD_LISTEN=0.0.0.0:9999",
		"PUSHD_API_TOKENS= tokentokentoken-1 ,, tokentokentoken-2",
		"PUSHD_REDIS_ADDR=redis:6379",
		"PUSHD_REDIS_DB=3",
		"PUSHD_REDIS_PASSWORD=",
		"PUSHD_DATABASE_DRIVER=postgres",
		"PUSHD_DATABASE_PATH=other.db",
		"PUSHD_DATABASE_DSN=postgres://u:p@h/db",
		"PUSHD_WORKER_TASK_CHECK_INTERVAL=20ms",
		"PUSHD_WORKER_CONCURRENCY=7",
		"PUSHD_WORKER_CHUNK_SIZE=250",
		"PUSHD_WORKER_SHUTDOWN_TIMEOUT=5s",
		"UNRELATED=1",
	}
	c, err := load(t, minimal+`
listen: 127.0.0.1:1
redis: {addr: file:1, db: 1, password: from-file}
database: {driver: sqlite, path: file.db}
worker: {concurrency: 1, shutdown_timeout: 1s}
`, env...)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "0.0.0.0:9999" ||
		!reflect.DeepEqual(c.APITokens, []secret.Secret{"tokentokentoken-1", "tokentokentoken-2"}) ||
		c.Redis != (Redis{Addr: "redis:6379", DB: 3, Password: ""}) ||
		c.Database != (Database{Driver: "postgres", Path: filepath.Join(c.Dir, "other.db"), DSN: "postgres://u:p@h/db", DeliveryRetention: 7 * 24 * time.Hour}) ||
		c.Worker.Concurrency != 7 || c.Worker.ChunkSize != 250 || c.Worker.ShutdownTimeout != 5*time.Second || c.Worker.TaskCheckInterval != 20*time.Millisecond {
		t.Errorf("overrides not applied: %+v", c)
	}

	// Later entries win, as in os/exec.
	c, err = load(t, minimal, "PUSHD_LISTEN=:1", "PUSHD_LISTEN=:2")
	if err != nil || c.Listen != ":2" {
		t.Errorf("listen = %q, %v; want :2", c.Listen, err)
	}
}

func TestEnvOverrideProblems(t *testing.T) {
	got := problemsOf(t, minimal, "PUSHD_REDIS_DB=two", "PUSHD_WORKER_CONCURRENCY=0", "PUSHD_LISTEN=nope", "PUSHD_WORKER_SHUTDOWN_TIMEOUT=5")
	want := []string{
		`listen: must be host:port, such as 127.0.0.1:8080: address nope: missing port in address (from PUSHD_LISTEN)`,
		`redis.db: must be a whole number, not "two" (from PUSHD_REDIS_DB)`,
		`worker.concurrency: must be between 1 and 10000 (from PUSHD_WORKER_CONCURRENCY)`,
		`worker.shutdown_timeout: must be a duration such as 30s or 1m30s, not "5" (from PUSHD_WORKER_SHUTDOWN_TIMEOUT)`,
	}
	if !reflect.DeepEqual(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
		t.Errorf("got  %q\nwant %q", got, want)
	}

	// An override replaces a file value that would not have worked.
	if _, err := load(t, strings.Replace(minimal, `"0123456789abcdef"`, `"${UNSET}", short`, 1), "PUSHD_API_TOKENS=0123456789abcdef"); err != nil {
		t.Errorf("override of broken api_tokens: %v", err)
	}
	got = problemsOf(t, minimal, "PUSHD_API_TOKENS=ok-long-enough-token,short")
	if want := []string{"api_tokens[1]: must be at least 16 characters, not 5 (from PUSHD_API_TOKENS)"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestExpandEnv(t *testing.T) {
	env := map[string]string{"A": "alpha", "EMPTY": "", "_X1": "x"}
	for _, tc := range []struct{ in, want, err string }{
		{in: "plain", want: "plain"},
		{in: "${A}", want: "alpha"},
		{in: "pre-${A}-${_X1}-post", want: "pre-alpha-x-post"},
		{in: "${EMPTY}", want: ""},
		{in: "${UNSET:-fallback}", want: "fallback"},
		{in: "${EMPTY:-fallback}", want: "fallback"},
		{in: "${A:-fallback}", want: "alpha"},
		{in: "${UNSET:-}", want: ""},
		{in: "$${A} stays", want: "${A} stays"},
		{in: "pa$$word $A $", want: "pa$$word $A $"},
		{in: "${UNSET}", err: "environment variable UNSET is not set"},
		{in: "${A", err: "unterminated ${"},
		{in: "${1A}", err: `"1A" is not an environment variable name`},
		{in: "${}", err: `"" is not an environment variable name`},
	} {
		got, err := expandEnv(tc.in, env)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("expandEnv(%q) = %q, %v; want error %q", tc.in, got, err, tc.err)
			}
		case err != nil || got != tc.want:
			t.Errorf("expandEnv(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestEnvExpansionInFile(t *testing.T) {
	c, err := load(t, `
api_tokens: ["${TOKEN}"]
redis: {addr: "${REDIS_HOST:-127.0.0.1}:6379", password: "${REDIS_PASSWORD:-}"}
database: {path: "${DATA}/pushd.db"}
apps:
  - id: default
    apns: {key_file: "${CERTS}/k.p8", key_id: ABCDEFGHIJ, team_id: TEAM123456, topic: com.example.chat}
    defaults: {title: "${fromClientId}", data: {conv: "${convId}"}}
`, "TOKEN=0123456789abcdef", "DATA=/var/lib/pushd", "CERTS=certs", "fromClientId=NOT-THIS")
	if err != nil {
		t.Fatal(err)
	}
	if c.APITokens[0] != "0123456789abcdef" || c.Redis.Addr != "127.0.0.1:6379" || c.Redis.Password != "" ||
		c.Database.Path != "/var/lib/pushd/pushd.db" || c.Apps[0].APNs.KeyFile != filepath.Join(c.Dir, "certs", "k.p8") {
		t.Errorf("expansion: %+v %+v", c, c.Apps[0].APNs)
	}
	// Content templates are left for package content.
	if d := c.Apps[0].Defaults; d.Title != "${fromClientId}" || d.Data["conv"] != "${convId}" {
		t.Errorf("defaults were expanded: %+v", d)
	}
}

func TestRelativePaths(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "etc")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(sub, "pushd.yaml")
	yaml := `
api_tokens: ["0123456789abcdef"]
database: {path: ../data/pushd.db}
apps:
  - id: a
    apns: {key_file: certs/k.p8, ca_file: /abs/ca.pem, key_id: ABCDEFGHIJ, team_id: TEAM123456, topic: t}
    fcm: {credentials_file: ./fcm.json, ca_file: ca.pem}
  - id: mem
    fcm: {credentials_file: f.json}
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	// Loaded from elsewhere, through a relative path.
	t.Chdir(dir)
	c, err := Load(filepath.Join("etc", "pushd.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for got, want := range map[string]string{
		c.Dir:                         sub,
		c.Database.Path:               filepath.Join(dir, "data", "pushd.db"),
		c.Apps[0].APNs.KeyFile:        filepath.Join(sub, "certs", "k.p8"),
		c.Apps[0].APNs.CAFile:         "/abs/ca.pem",
		c.Apps[0].FCM.CredentialsFile: filepath.Join(sub, "fcm.json"),
		c.Apps[0].FCM.CAFile:          filepath.Join(sub, "ca.pem"),
		c.Apps[0].APNs.ProductionURL:  "",
		c.Apps[1].FCM.CredentialsFile: filepath.Join(sub, "f.json"),
	} {
		if got != want {
			t.Errorf("path %q, want %q", got, want)
		}
	}

	c, err = load(t, minimal, "PUSHD_DATABASE_PATH=:memory:")
	if err != nil || c.Database.Path != ":memory:" {
		t.Errorf("in-memory SQLite: %q, %v", c.Database.Path, err)
	}
}

// secretConfig is a config with every kind of secret, each value unlike
// anything else in it, and the values.
func secretConfig(t *testing.T) (*Config, []string) {
	t.Helper()
	c, err := load(t, `
api_tokens: [api-token-secret-1, api-token-secret-2]
redis: {password: redis-secret-pw}
database: {driver: postgres, dsn: "postgres://pushd:dsn-secret-pw@db:5432/pushd?sslmode=disable"}
apps:
  - id: universal
    apns: {certificate: {file: u.p12, password: cert-secret-pw-1}}
  - id: split
    apns:
      production_certificate: {file: p.p12, password: cert-secret-pw-2}
      development_certificate: {file: d.pem, password: cert-secret-pw-3}
      topic: com.example.chat
`)
	if err != nil {
		t.Fatal(err)
	}
	return c, []string{"api-token-secret", "redis-secret-pw", "dsn-secret-pw", "cert-secret-pw"}
}

func TestRedacted(t *testing.T) {
	c, secrets := secretConfig(t)
	out := c.Redacted()
	for _, secret := range secrets {
		if strings.Contains(out, secret) {
			t.Errorf("Redacted shows %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{
		"api_tokens: ['[redacted]', '[redacted]']",
		"password: '[redacted]'",
		"dsn: postgres://pushd:xxxxx@db:5432/pushd?sslmode=disable",
		"file: " + filepath.Join(c.Dir, "u.p12"),
		"shutdown_timeout: 30s",
		"topic: com.example.chat",
		"title: ${fromClientId}",
		"push-high: 6",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Redacted lacks %q:\n%s", want, out)
		}
	}
	// Printing or logging the config goes through Redacted.
	if s := c.String(); s != out {
		t.Error("String differs from Redacted")
	}
	if s := c.LogValue().String(); s != out {
		t.Error("LogValue differs from Redacted")
	}
	// The config itself keeps its secrets.
	if c.Redis.Password.Reveal() != "redis-secret-pw" || c.APITokens[0].Reveal() != "api-token-secret-1" ||
		c.Apps[0].APNs.Certificate.Password.Reveal() != "cert-secret-pw-1" {
		t.Error("Redacted changed the config")
	}
	// What Redacted writes, Load reads.
	if _, err := load(t, strings.ReplaceAll(out, "[redacted]", "0123456789abcdef")); err != nil {
		t.Errorf("Redacted output does not load: %v\n%s", err, out)
	}
}

// However a config is printed, logged or marshalled, its secrets stay
// hidden: the types hold them, not the code that prints.
func TestSecretsNeverShown(t *testing.T) {
	c, secrets := secretConfig(t)
	var jsonLog, textLog strings.Builder
	for _, h := range []slog.Handler{slog.NewJSONHandler(&jsonLog, nil), slog.NewTextHandler(&textLog, nil)} {
		slog.New(h).Info("config", "config", c, "value", *c, "redis", c.Redis, "database", c.Database,
			"apns", c.Apps[1].APNs, "password", c.Redis.Password, "tokens", c.APITokens)
	}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{
		"%v":           fmt.Sprintf("%v", c),
		"%v of value":  fmt.Sprintf("%v", *c),
		"%+v of value": fmt.Sprintf("%+v", *c),
		"%#v of value": fmt.Sprintf("%#v", *c),
		"%+v of apns":  fmt.Sprintf("%+v %+v", *c.Apps[0].APNs.Certificate, *c.Apps[1].APNs),
		"%#v of apns":  fmt.Sprintf("%#v %#v", *c.Apps[0].APNs.Certificate, *c.Apps[1].APNs.ProductionCertificate),
		"slog JSON":    jsonLog.String(),
		"slog text":    textLog.String(),
		"json":         string(j),
		"yaml":         string(y),
	} {
		for _, secret := range secrets {
			if strings.Contains(out, secret) {
				t.Errorf("%s shows %q: %s", name, secret, out)
			}
		}
		if !strings.Contains(out, "redacted") {
			t.Errorf("%s shows no redacted secret: %s", name, out)
		}
	}
}

func TestCheckFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pushd.yaml")
	if err := os.WriteFile(filepath.Join(dir, "k.p8"), []byte("key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(minimal+"    fcm: {credentials_file: missing.json}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = c.CheckFiles()
	var e *Error
	if !errors.As(err, &e) || len(e.Problems) != 1 || e.Problems[0].Key != "apps[0].fcm.credentials_file" ||
		!strings.Contains(err.Error(), "cannot read") || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("CheckFiles = %v", err)
	}
}

func TestDocuments(t *testing.T) {
	got := problemsOf(t, "")
	if want := []string{"api_tokens: at least one token is required", "apps: at least one app is required"}; !reflect.DeepEqual(got, want) {
		t.Errorf("empty file: got %q, want %q", got, want)
	}
	got = problemsOf(t, minimal+"---\nlisten: :1\n")
	if want := []string{"more than one YAML document (---) (line 6)"}; !reflect.DeepEqual(got, want) {
		t.Errorf("two documents: got %q, want %q", got, want)
	}
}

// TestAPNsCertificates loads certificate credentials: no topic or key ids
// needed, paths resolved against the config file, the password expanded
// from the environment and never shown, and missing files reported.
func TestAPNsCertificates(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pushd.yaml")
	yaml := `
api_tokens: ["0123456789abcdef"]
apps:
  - id: split
    apns:
      production_certificate: {file: certs/prod.p12, password: "${CERT_PW}"}
      development_certificate: {file: /abs/dev.pem}
  - id: universal
    apns: {certificate: {file: push.p12, password: "literal-cert-pw"}, topic: com.example.chat}
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, []string{"CERT_PW=env-cert-pw"})
	if err != nil {
		t.Fatal(err)
	}
	split, uni := c.Apps[0].APNs, c.Apps[1].APNs
	if split.ProductionCertificate == nil || split.DevelopmentCertificate == nil || split.Certificate != nil || uni.Certificate == nil {
		t.Fatalf("certificates: %+v %+v", split, uni)
	}
	for got, want := range map[string]string{
		split.ProductionCertificate.File:              filepath.Join(dir, "certs", "prod.p12"),
		split.ProductionCertificate.Password.Reveal(): "env-cert-pw",
		split.DevelopmentCertificate.File:             "/abs/dev.pem",
		uni.Certificate.File:                          filepath.Join(dir, "push.p12"),
		uni.Certificate.Password.Reveal():             "literal-cert-pw",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}

	out := c.Redacted()
	for _, secret := range []string{"env-cert-pw", "literal-cert-pw"} {
		if strings.Contains(out, secret) {
			t.Errorf("Redacted shows %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "password: '[redacted]'") || !strings.Contains(out, "push.p12") {
		t.Errorf("Redacted lacks the certificate:\n%s", out)
	}
	if uni.Certificate.Password != "literal-cert-pw" || split.ProductionCertificate.Password != "env-cert-pw" {
		t.Error("Redacted changed the config")
	}

	err = c.CheckFiles()
	var e *Error
	if !errors.As(err, &e) || len(e.Problems) != 3 {
		t.Fatalf("CheckFiles = %v", err)
	}
	for i, key := range []string{"apps[0].apns.production_certificate.file", "apps[0].apns.development_certificate.file", "apps[1].apns.certificate.file"} {
		if e.Problems[i].Key != key {
			t.Errorf("problem %d is %s, want %s", i, e.Problems[i], key)
		}
	}
	if strings.Contains(err.Error(), "cert-pw") {
		t.Errorf("CheckFiles shows a password: %v", err)
	}
}

func TestFCMApplicationDefault(t *testing.T) {
	c, err := load(t, "api_tokens: [\"0123456789abcdef\"]\napps:\n  - id: a\n    fcm: {application_default: true, project_id: chat-prod}\n")
	if err != nil {
		t.Fatal(err)
	}
	if f := c.Apps[0].FCM; !f.ApplicationDefault || f.CredentialsFile != "" || f.ProjectID != "chat-prod" {
		t.Errorf("fcm = %+v", f)
	}
	// No file to check.
	if err := c.CheckFiles(); err != nil {
		t.Errorf("CheckFiles = %v", err)
	}
}
