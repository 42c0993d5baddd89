// Package config is pushd's configuration: one YAML file, environment
// overrides, and validation at start that reports every problem at once,
// each naming its key and the rule it breaks.
//
// # File
//
// pushd.example.yaml at the repository root documents every key. Decoding
// is strict: an unknown key is an error that names its key path and line,
// so a typo never silently leaves a setting at its default; only top-level
// keys starting with "x-" are ignored, to hold YAML anchors as in Compose
// files. Keys the file leaves out keep the values of Default, and an app's
// default content keys those of DefaultContent. Durations are Go duration
// strings ("30s", "1m30s").
//
// # Environment
//
// String values may name environment variables: ${NAME} is replaced by
// NAME's value and is an error when NAME is not set; ${NAME:-fallback} uses
// fallback when NAME is unset or empty; $${ is a literal "${". A "$"
// elsewhere is literal, so passwords need no escaping. An app's defaults
// are not expanded: their ${convId}, ${fromClientId} and ${timestamp} are
// content template variables, filled per job (package content).
//
// After the file, these variables override single keys; each is PUSHD_
// followed by the key's path, upper-cased, with "_" for ".":
//
//	PUSHD_LISTEN                    listen
//	PUSHD_API_TOKENS                api_tokens (comma-separated)
//	PUSHD_REDIS_ADDR                redis.addr
//	PUSHD_REDIS_DB                  redis.db
//	PUSHD_REDIS_PASSWORD            redis.password
//	PUSHD_DATABASE_DRIVER           database.driver
//	PUSHD_DATABASE_PATH             database.path
//	PUSHD_DATABASE_DSN              database.dsn
//	PUSHD_WORKER_CONCURRENCY        worker.concurrency
//	PUSHD_WORKER_CHUNK_SIZE         worker.chunk_size
//	PUSHD_WORKER_DEQUEUERS          worker.dequeuers
//	PUSHD_WORKER_SHUTDOWN_TIMEOUT   worker.shutdown_timeout
//	PUSHD_WORKER_TASK_CHECK_INTERVAL worker.task_check_interval
//
// A variable that is set overrides its key even when empty, so that a
// password can be cleared. Apps and queue weights have no overrides: they
// are structure, not deployment settings.
//
// # Paths
//
// Relative file paths (database.path and the apps' key, credentials and CA
// files) are resolved against the directory of the config file, not the
// working directory, so a config works wherever pushd is started from; the
// same holds for a path from PUSHD_DATABASE_PATH.
package config

import (
	"fmt"
	"iter"
	"log/slog"
	"strings"
	"time"

	"github.com/pushd/pushd/internal/content"
	"github.com/pushd/pushd/internal/secret"
	"github.com/pushd/pushd/internal/storage"
	"github.com/pushd/pushd/pushjob"
)

// Config is pushd's configuration.
type Config struct {
	// Listen is the HTTP API's address.
	Listen string `yaml:"listen"`
	// PprofListen is a loopback address serving net/http/pprof, for
	// profiling a running pushd; empty serves none.
	PprofListen string `yaml:"pprof_listen"`
	// APITokens are the bearer tokens the API accepts.
	APITokens []secret.Secret `yaml:"api_tokens"`
	Redis     Redis           `yaml:"redis"`
	Database  Database        `yaml:"database"`
	Worker    Worker          `yaml:"worker"`
	Apps      []App           `yaml:"apps"`

	// File is the config file's path, as given to Load.
	File string `yaml:"-"`
	// Dir is the absolute directory relative paths were resolved against:
	// the config file's.
	Dir string `yaml:"-"`
}

// Redis is the asynq broker.
type Redis struct {
	Addr     string        `yaml:"addr"`
	DB       int           `yaml:"db"`
	Password secret.Secret `yaml:"password"`
}

// Database drivers.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// Database is where the device registry and mutes live.
type Database struct {
	// Driver is DriverSQLite or DriverPostgres. Empty means postgres when
	// a DSN is set and sqlite otherwise.
	Driver string `yaml:"driver"`
	// Path is the SQLite file.
	Path string `yaml:"path"`
	// DSN is the PostgreSQL connection string (URL or key=value form); it
	// shows with its password hidden.
	DSN storage.DSN `yaml:"dsn"`
	// DeliveryRetention is how long delivery records are kept: the trace
	// operators read, and what keeps a retried job from pushing a device
	// twice, so it must outlive the longest life of a job.
	DeliveryRetention time.Duration `yaml:"delivery_retention"`
}

// Worker is the asynq server that runs jobs.
type Worker struct {
	// Concurrency is how many jobs run at once.
	Concurrency int `yaml:"concurrency"`
	// Dequeuers is how many loops take jobs from Redis at once, sharing
	// the Concurrency workers: asynq's server takes one job at a time.
	// Zero is DefaultDequeuers, or Concurrency when that is fewer; see
	// DequeueLoops.
	Dequeuers int `yaml:"dequeuers"`
	// ChunkSize is the most recipients a job is processed with: a larger
	// one is split into child jobs of this many, which every worker of
	// every pushd process shares.
	ChunkSize int `yaml:"chunk_size"`
	// Queues are the weights of pushjob's priority queues.
	Queues map[string]int `yaml:"queues"`
	// ShutdownTimeout bounds how long SIGTERM waits for jobs in flight.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// TaskCheckInterval is how often an idle worker asks Redis for a new
	// job: the most a job waits to start on an idle pushd is one and a
	// half times it. asynq's own default, a second, delayed every push of
	// a quiet chat by that much.
	TaskCheckInterval time.Duration `yaml:"task_check_interval"`
	// ThrottleMaxWait bounds how long after its message a job a provider
	// keeps throttling is still retried; then its devices fail with
	// reason throttled.
	ThrottleMaxWait time.Duration `yaml:"throttle_max_wait"`
}

// DefaultDequeuers is worker.dequeuers when the config does not say.
const DefaultDequeuers = 4

// DequeueLoops is how many loops take jobs: Dequeuers, or when zero
// DefaultDequeuers but never more than the workers.
func (w Worker) DequeueLoops() int {
	if w.Dequeuers > 0 {
		return w.Dequeuers
	}
	return max(1, min(DefaultDequeuers, w.Concurrency))
}

// App is one app's credentials and default content.
type App struct {
	ID   string `yaml:"id"`
	APNs *APNs  `yaml:"apns"`
	FCM  *FCM   `yaml:"fcm"`
	// Defaults is the content of pushes whose job does not say; keys the
	// file leaves out take DefaultContent's values.
	Defaults content.Defaults `yaml:"defaults"`
}

// APNs is an app's APNs credentials: a token key (.p8; KeyFile, KeyID,
// TeamID) or client certificates (Certificate for both environments, or
// ProductionCertificate and/or DevelopmentCertificate), never both.
type APNs struct {
	KeyFile string `yaml:"key_file"`
	KeyID   string `yaml:"key_id"`
	TeamID  string `yaml:"team_id"`
	// Certificate is a universal certificate serving both environments.
	Certificate *Certificate `yaml:"certificate"`
	// ProductionCertificate and DevelopmentCertificate serve one
	// environment each; an environment without one has no credentials.
	ProductionCertificate  *Certificate `yaml:"production_certificate"`
	DevelopmentCertificate *Certificate `yaml:"development_certificate"`
	// Topic is the app's bundle id; with certificates, empty is the
	// certificates' bundle id.
	Topic string `yaml:"topic"`
	// ProductionURL and DevelopmentURL replace Apple's gateways (for
	// pushsim); empty is Apple.
	ProductionURL  string `yaml:"production_url"`
	DevelopmentURL string `yaml:"development_url"`
	// CAFile, when set, is trusted instead of the system roots.
	CAFile string `yaml:"ca_file"`
}

// Certificate is an APNs client certificate file: .p12, or PEM with the
// certificate and its private key.
type Certificate struct {
	File string `yaml:"file"`
	// Password opens the .p12 or the encrypted PEM key; empty for none.
	Password secret.Secret `yaml:"password"`
}

// certificates returns the APNs certificates that are set, with their
// keys.
func (a *APNs) certificates() (keys []string, certs []*Certificate) {
	for _, c := range []struct {
		key  string
		cert *Certificate
	}{{"certificate", a.Certificate}, {"production_certificate", a.ProductionCertificate}, {"development_certificate", a.DevelopmentCertificate}} {
		if c.cert != nil {
			keys = append(keys, c.key)
			certs = append(certs, c.cert)
		}
	}
	return keys, certs
}

// files yields every file an app's config names, by key below the app
// ("apns.key_file"), as a pointer to its path: the one list that path
// resolution and the start-up check share.
func (a *App) files() iter.Seq2[string, *string] {
	return func(yield func(string, *string) bool) {
		if p := a.APNs; p != nil {
			if !yield("apns.key_file", &p.KeyFile) {
				return
			}
			keys, certs := p.certificates()
			for i, c := range certs {
				if !yield("apns."+keys[i]+".file", &c.File) {
					return
				}
			}
			if !yield("apns.ca_file", &p.CAFile) {
				return
			}
		}
		if f := a.FCM; f != nil {
			if !yield("fcm.credentials_file", &f.CredentialsFile) {
				return
			}
			yield("fcm.ca_file", &f.CAFile)
		}
	}
}

// FCM is an app's Firebase credentials.
type FCM struct {
	// CredentialsFile is a service account's JSON key.
	CredentialsFile string `yaml:"credentials_file"`
	// ApplicationDefault uses Google's Application Default Credentials
	// instead of a file (GOOGLE_APPLICATION_CREDENTIALS, gcloud's, or the
	// metadata server); set one of the two.
	ApplicationDefault bool `yaml:"application_default"`
	// ProjectID defaults to the credentials' own project.
	ProjectID string `yaml:"project_id"`
	// Endpoint replaces Google's FCM endpoint (for pushsim); empty is
	// Google.
	Endpoint string `yaml:"endpoint"`
	// CAFile, when set, is trusted instead of the system roots.
	CAFile string `yaml:"ca_file"`
}

// Default returns the values of the keys a config file leaves out. It has
// no API tokens and no apps, which every deployment must configure, so it
// does not validate by itself: pushd needs a config file.
func Default() *Config {
	return &Config{
		Listen:   "127.0.0.1:8080",
		Redis:    Redis{Addr: "127.0.0.1:6379"},
		Database: Database{Path: "data/pushd.db", DeliveryRetention: 7 * 24 * time.Hour},
		Worker: Worker{
			Concurrency:       20,
			ChunkSize:         1000,
			Queues:            pushjob.Queues(),
			ShutdownTimeout:   30 * time.Second,
			TaskCheckInterval: 5 * time.Millisecond,
			ThrottleMaxWait:   24 * time.Hour,
		},
	}
}

// DefaultContent is an app's default content before its config's defaults
// key is applied: the sender as title and a generic body.
func DefaultContent() content.Defaults {
	return content.Defaults{Title: "${fromClientId}", Body: "New message", Sound: "default"}
}

// setDefaults prepares an app entry before the file's keys are decoded
// into it.
func (a *App) setDefaults() { a.Defaults = DefaultContent() }

// App returns the app with the given id.
func (c *Config) App(id string) (App, bool) {
	for _, a := range c.Apps {
		if a.ID == id {
			return a, true
		}
	}
	return App{}, false
}

// DatabaseDriver returns the driver in effect: Database.Driver, or the one
// an empty driver stands for.
func (c *Config) DatabaseDriver() string {
	switch {
	case c.Database.Driver != "":
		return c.Database.Driver
	case c.Database.DSN != "":
		return DriverPostgres
	}
	return DriverSQLite
}

// String is Redacted, so that printing a config never shows a secret.
func (c *Config) String() string { return c.Redacted() }

// LogValue is Redacted, so that logging a config never shows a secret.
func (c *Config) LogValue() slog.Value { return slog.StringValue(c.Redacted()) }

// Problem is one thing wrong with a configuration.
type Problem struct {
	// Key is the key's path, such as apps[0].apns.key_id; empty for the
	// document as a whole.
	Key string
	// Rule is what is wrong, such as "required when key_file is set".
	Rule string
	// Line is the line in the file the problem was found at or near; zero
	// when unknown.
	Line int
	// Env is the environment variable the value came from, if any.
	Env string
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Rule)
	switch {
	case p.Env != "":
		fmt.Fprintf(&b, " (from %s)", p.Env)
	case p.Line > 0:
		fmt.Fprintf(&b, " (line %d)", p.Line)
	}
	return b.String()
}

// Error is a configuration that cannot be used, with every problem found.
type Error struct {
	// File is the config file's path.
	File     string
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "config %s: ", e.File)
	if len(e.Problems) == 1 {
		b.WriteString(e.Problems[0].String())
		return b.String()
	}
	fmt.Fprintf(&b, "%d problems:", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n\t")
		b.WriteString(p.String())
	}
	return b.String()
}
