package config

import (
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/pushd/pushd/internal/content"
	"github.com/pushd/pushd/pushjob"
)

// Bounds the validation enforces.
const (
	MinAPITokenLen = 16
	MaxConcurrency = 10_000
	MaxDequeuers   = 64
	// MinChunkSize is the smallest worker.chunk_size: below it a big job
	// becomes so many child jobs that enqueueing them costs more than the
	// sharing gains.
	MinChunkSize = 100
)

type problems []Problem

func (ps *problems) add(key, format string, args ...any) {
	*ps = append(*ps, Problem{Key: key, Rule: fmt.Sprintf(format, args...)})
}

// validate returns every rule c breaks.
func (c *Config) validate() []Problem {
	var ps problems
	checkAddr(&ps, "listen", c.Listen)
	if c.PprofListen != "" {
		checkAddr(&ps, "pprof_listen", c.PprofListen)
		if host, _, err := net.SplitHostPort(c.PprofListen); err == nil && !loopback(host) {
			// Profiles show memory, goroutines and command lines: they
			// are for whoever is on the machine, not the network.
			ps.add("pprof_listen", "must be a loopback address such as 127.0.0.1:6060, not %q", c.PprofListen)
		}
	}

	if len(c.APITokens) == 0 {
		ps.add("api_tokens", "at least one token is required")
	}
	for i, t := range c.APITokens {
		key := fmt.Sprintf("api_tokens[%d]", i)
		switch {
		case len(t) < MinAPITokenLen:
			// The length, never the token: errors end up in logs.
			ps.add(key, "must be at least %d characters, not %d", MinAPITokenLen, len(t))
		case strings.IndexFunc(t.Reveal(), func(r rune) bool { return r > unicode.MaxASCII || !unicode.IsGraphic(r) || r == ' ' }) >= 0:
			ps.add(key, "must be printable ASCII without spaces, as an HTTP header carries it")
		}
	}

	checkAddr(&ps, "redis.addr", c.Redis.Addr)
	if c.Redis.DB < 0 {
		ps.add("redis.db", "must not be negative")
	}

	switch db := c.Database; db.Driver {
	case "":
		if db.DSN == "" && db.Path == "" {
			ps.add("database.path", "required unless dsn is set")
		}
	case DriverSQLite:
		if db.Path == "" {
			ps.add("database.path", "required when driver is sqlite")
		}
		if db.DSN != "" {
			ps.add("database.dsn", "set, but driver is sqlite: set driver to postgres, or remove dsn")
		}
	case DriverPostgres:
		if db.DSN == "" {
			ps.add("database.dsn", "required when driver is postgres")
		}
	default:
		ps.add("database.driver", "must be sqlite or postgres, not %q", db.Driver)
	}

	w := c.Worker
	if w.Concurrency < 1 || w.Concurrency > MaxConcurrency {
		ps.add("worker.concurrency", "must be between 1 and %d", MaxConcurrency)
	}
	known := pushjob.Queues()
	for _, q := range slices.Sorted(maps.Keys(w.Queues)) {
		key := "worker.queues." + q
		if _, ok := known[q]; !ok {
			ps.add(key, "unknown queue; pushd's are %s, %s and %s", pushjob.QueueHigh, pushjob.QueueNormal, pushjob.QueueLow)
		} else if w.Queues[q] < 1 {
			ps.add(key, "weight must be at least 1")
		}
	}
	for _, q := range []string{pushjob.QueueHigh, pushjob.QueueNormal, pushjob.QueueLow} {
		if _, ok := w.Queues[q]; !ok {
			// A missing queue is never served: its jobs wait forever.
			ps.add("worker.queues", "missing %s: its jobs would never run", q)
		}
	}
	if w.Dequeuers < 0 || w.Dequeuers > MaxDequeuers {
		ps.add("worker.dequeuers", "must be between 1 and %d, or 0 for the default", MaxDequeuers)
	} else if w.Dequeuers > w.Concurrency && w.Concurrency >= 1 {
		ps.add("worker.dequeuers", "%d is more than worker.concurrency (%d): each needs a worker", w.Dequeuers, w.Concurrency)
	}
	if w.ChunkSize < MinChunkSize || w.ChunkSize > pushjob.MaxRecipients {
		ps.add("worker.chunk_size", "must be between %d and %d", MinChunkSize, pushjob.MaxRecipients)
	}
	if w.ShutdownTimeout <= 0 {
		ps.add("worker.shutdown_timeout", "must be positive")
	}
	if w.TaskCheckInterval < time.Millisecond || w.TaskCheckInterval > 10*time.Second {
		// Below a millisecond the idle polling costs Redis more than any
		// job gains; above ten seconds jobs wait for nothing.
		ps.add("worker.task_check_interval", "must be between 1ms and 10s")
	}
	if w.ThrottleMaxWait <= 0 {
		ps.add("worker.throttle_max_wait", "must be positive")
	}
	if r := c.Database.DeliveryRetention; r <= 0 {
		ps.add("database.delivery_retention", "must be positive")
	} else if life := LongestJobLife(w.ThrottleMaxWait); w.ThrottleMaxWait > 0 && r <= life {
		// A job retried after its records are pruned would push the
		// devices that already have the message again.
		ps.add("database.delivery_retention", "%v must exceed the longest life of a job, %v (worker.throttle_max_wait %v, every retry at the longest backoff, and the task id's retention %v): raise it, or lower worker.throttle_max_wait",
			r, life, w.ThrottleMaxWait, pushjob.Retention)
	}

	if len(c.Apps) == 0 {
		ps.add("apps", "at least one app is required")
	}
	first := make(map[string]int)
	for i, a := range c.Apps {
		a.validate(&ps, fmt.Sprintf("apps[%d]", i))
		if j, dup := first[a.ID]; dup && a.ID != "" {
			ps.add(fmt.Sprintf("apps[%d].id", i), "duplicate app id %q (also apps[%d])", a.ID, j)
		} else {
			first[a.ID] = i
		}
	}
	return ps
}

func (a *App) validate(ps *problems, key string) {
	switch {
	case a.ID == "":
		ps.add(key+".id", "required")
	case !validAppID(a.ID):
		ps.add(key+".id", "must match [A-Za-z0-9_.-]{1,64}, as job app_ids do")
	}
	if a.APNs == nil && a.FCM == nil {
		ps.add(key, "needs apns or fcm credentials, or both")
	}
	if p := a.APNs; p != nil {
		k := key + ".apns."
		certKeys, certs := p.certificates()
		switch {
		case p.KeyFile == "" && len(certs) == 0:
			ps.add(k+"key_file", "required (the .p8 token key), unless certificate, production_certificate or development_certificate is set")
		case p.KeyFile != "" && len(certs) > 0:
			ps.add(k+certKeys[0], "set together with key_file: an app uses a .p8 key or certificates, not both")
		case p.KeyFile != "":
			appleID(ps, k+"key_id", p.KeyID)
			appleID(ps, k+"team_id", p.TeamID)
		default:
			if p.Certificate != nil && len(certs) > 1 {
				ps.add(k+certKeys[1], "set together with certificate: use one universal certificate, or production_certificate and/or development_certificate")
			}
			for i, c := range certs {
				if c.File == "" {
					ps.add(k+certKeys[i]+".file", "required (the .p12 or PEM certificate file)")
				}
			}
			for _, id := range []struct{ key, v string }{{"key_id", p.KeyID}, {"team_id", p.TeamID}} {
				if id.v != "" {
					ps.add(k+id.key, "only used with key_file, not with certificates")
				}
			}
		}
		switch {
		case p.Topic == "" && len(certs) == 0:
			ps.add(k+"topic", "required (the app's bundle id)")
		case strings.ContainsFunc(p.Topic, unicode.IsSpace):
			ps.add(k+"topic", "must not contain spaces")
		}
		checkURL(ps, k+"production_url", p.ProductionURL)
		checkURL(ps, k+"development_url", p.DevelopmentURL)
	}
	if f := a.FCM; f != nil {
		k := key + ".fcm."
		switch {
		case f.CredentialsFile == "" && !f.ApplicationDefault:
			ps.add(k+"credentials_file", "required (the service account's JSON key), unless application_default is true")
		case f.CredentialsFile != "" && f.ApplicationDefault:
			ps.add(k+"application_default", "not with credentials_file: set one")
		}
		checkURL(ps, k+"endpoint", f.Endpoint)
	}
	checkDefaults(ps, key+".defaults", a.Defaults)
}

// appleID checks a key or team id: ten upper-case letters and digits.
func appleID(ps *problems, key, id string) {
	if id == "" {
		ps.add(key, "required when key_file is set")
		return
	}
	if len(id) != 10 || strings.IndexFunc(id, func(r rune) bool { return !('A' <= r && r <= 'Z' || '0' <= r && r <= '9') }) >= 0 {
		ps.add(key, "must be 10 upper-case letters and digits, as Apple shows it")
	}
}

func checkDefaults(ps *problems, key string, d content.Defaults) {
	if b := d.Badge; b != nil && !b.Increment && b.Value < 0 {
		ps.add(key+".badge", "must not be negative")
	}
	if d.Data == nil {
		return
	}
	for _, k := range slices.Sorted(maps.Keys(d.Data)) {
		// The same keys a job may not use (pushjob.Validate): APNs puts
		// data beside "aps", and FCM refuses its reserved words.
		switch {
		case k == "aps":
			ps.add(key+".data."+k, `reserved by APNs`)
		case k == "from" || k == "message_type" || strings.HasPrefix(k, "google") || strings.HasPrefix(k, "gcm"):
			ps.add(key+".data."+k, "reserved by FCM")
		}
	}
	if _, err := json.Marshal(d.Data); err != nil {
		ps.add(key+".data", "must be representable as JSON: %v", err)
	}
}

// checkAddr checks a host:port address; the host may be empty (all
// interfaces) and the port 0 (any free port).
// loopback reports whether host is a loopback name or address.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func checkAddr(ps *problems, key, addr string) {
	if addr == "" {
		ps.add(key, "required")
		return
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		ps.add(key, "must be host:port, such as 127.0.0.1:8080: %v", err)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		ps.add(key, "port %q must be a number from 0 to 65535", port)
	}
}

// checkURL checks an optional endpoint override.
func checkURL(ps *problems, key, s string) {
	if s == "" {
		return
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		ps.add(key, "must be an http or https URL with a host, such as https://127.0.0.1:8443")
	}
}

// validAppID reports whether s matches [A-Za-z0-9_.-]{1,64}, the rule
// pushjob applies to a job's app_id.
func validAppID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// CheckFiles reports every configured file that cannot be read: key,
// credentials and CA files. Load does not look at the file system, so that
// a config can be checked where its secrets are not; pushd serve calls
// this before it starts, to name every missing file at once rather than
// failing on the first.
func (c *Config) CheckFiles() error {
	var ps problems
	check := func(key, path string) {
		if path == "" {
			return
		}
		f, err := os.Open(path)
		if err != nil {
			ps.add(key, "cannot read: %v", err)
			return
		}
		f.Close()
	}
	for i := range c.Apps {
		for key, path := range c.Apps[i].files() {
			check(fmt.Sprintf("apps[%d].%s", i, key), *path)
		}
	}
	if len(ps) > 0 {
		return &Error{File: c.File, Problems: ps}
	}
	return nil
}

// LongestJobLife is the longest a job can live on the queue when no retry
// is made past throttleMaxWait after its message (dispatch.RetryPolicy):
// that wait, and on top of it, to leave a margin, every retry of its
// budget at the longest backoff (5 minutes plus half of jitter) and the
// longest attempt, then the task id's retention, within which the same
// message is refused as a duplicate.
func LongestJobLife(throttleMaxWait time.Duration) time.Duration {
	retries := time.Duration(pushjob.MaxRetry) * (5*time.Minute + 5*time.Minute/2)
	attempts := time.Duration(pushjob.MaxRetry+1) * pushjob.Timeout
	return throttleMaxWait + retries + attempts + pushjob.Retention
}
