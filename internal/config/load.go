package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/pushd/pushd/internal/secret"
	"github.com/pushd/pushd/internal/storage"
)

// Load reads the config file at path, applies the environment's overrides
// and validates the result. env is the environment as os.Environ returns
// it; later entries win. A config that cannot be used is an *Error listing
// every problem; a file that cannot be read or is not YAML is a plain error.
func Load(path string, env []string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return parse(path, dir, data, env)
}

// parse is Load after reading the file.
func parse(path, dir string, data []byte, env []string) (*Config, error) {
	c := Default()
	c.File, c.Dir = path, dir
	d := &decoder{env: envMap(env), lines: make(map[string]int)}

	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		// An empty file: every key at its default, which validation
		// then finds wanting.
	case err != nil:
		return nil, fmt.Errorf("config %s: %w", path, err)
	default:
		d.decode(doc.Content[0], reflect.ValueOf(c).Elem(), "", true)
		var next yaml.Node
		if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
			// A second document would be ignored: say so rather than
			// run without it.
			d.problems = append(d.problems, Problem{Rule: "more than one YAML document (---)", Line: next.Line})
		}
	}

	overridden := applyEnv(c, d)
	c.resolvePaths()

	var out []Problem
	failed := make(map[string]bool)
	for _, p := range d.problems {
		if p.Env == "" && overriddenBy(overridden, p.Key) != "" {
			// The file's value was replaced: its problems are moot.
			continue
		}
		failed[p.Key] = true
		out = append(out, p)
	}
	for _, p := range c.validate() {
		if under(failed, p.Key) {
			// A value that did not decode was left at its default; the
			// decoding problem says what is wrong, and validating the
			// default would only add noise.
			continue
		}
		if env := overriddenBy(overridden, p.Key); env != "" {
			p.Env = env
		} else {
			p.Line = d.line(p.Key)
		}
		out = append(out, p)
	}
	if len(out) > 0 {
		// In file order; problems from the environment last.
		slices.SortStableFunc(out, func(a, b Problem) int {
			if c := cmp.Compare(lineOrder(a), lineOrder(b)); c != 0 || a.Line != 0 {
				return c
			}
			return cmp.Compare(a.Key, b.Key)
		})
		return nil, &Error{File: path, Problems: out}
	}
	return c, nil
}

func lineOrder(p Problem) int {
	if p.Line == 0 {
		return math.MaxInt
	}
	return p.Line
}

// ancestors calls yield with key and each of its ancestors' paths, nearest
// first: apps[0].apns.key_id, apps[0].apns, apps[0], apps.
func ancestors(key string, yield func(string) bool) {
	for key != "" {
		if !yield(key) {
			return
		}
		i := strings.LastIndexAny(key, ".[")
		if i < 0 {
			return
		}
		key = key[:i]
	}
}

// under reports whether key or one of its ancestors, the document ("")
// included, is in set.
func under(set map[string]bool, key string) bool {
	found := set[""]
	ancestors(key, func(k string) bool {
		found = found || set[k]
		return !found
	})
	return found
}

// overriddenBy returns the environment variable that replaced key or one of
// its ancestors, if any.
func overriddenBy(overridden map[string]string, key string) string {
	env := ""
	ancestors(key, func(k string) bool {
		env = overridden[k]
		return env == ""
	})
	return env
}

// line returns the line of key's value, or of its closest ancestor's when
// the key is missing from the file.
func (d *decoder) line(key string) int {
	line := 0
	ancestors(key, func(k string) bool {
		line = d.lines[k]
		return line == 0
	})
	return line
}

func envMap(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// override is an environment variable that sets one key.
type override struct {
	key string
	set func(c *Config, v string) error
}

// overrides lists the environment overrides, by variable name.
func overrides() map[string]override {
	num := func(key string, field func(*Config) *int) override {
		return override{key, func(c *Config, v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("must be a whole number, not %q", v)
			}
			*field(c) = n
			return nil
		}}
	}
	return map[string]override{
		"PUSHD_LISTEN": str("listen", func(c *Config) *string { return &c.Listen }),
		"PUSHD_API_TOKENS": {"api_tokens", func(c *Config, v string) error {
			c.APITokens = nil
			for t := range strings.SplitSeq(v, ",") {
				if t = strings.TrimSpace(t); t != "" {
					c.APITokens = append(c.APITokens, secret.Secret(t))
				}
			}
			return nil
		}},
		"PUSHD_REDIS_ADDR":                 str("redis.addr", func(c *Config) *string { return &c.Redis.Addr }),
		"PUSHD_REDIS_DB":                   num("redis.db", func(c *Config) *int { return &c.Redis.DB }),
		"PUSHD_REDIS_PASSWORD":             str("redis.password", func(c *Config) *secret.Secret { return &c.Redis.Password }),
		"PUSHD_DATABASE_DRIVER":            str("database.driver", func(c *Config) *string { return &c.Database.Driver }),
		"PUSHD_DATABASE_PATH":              str("database.path", func(c *Config) *string { return &c.Database.Path }),
		"PUSHD_DATABASE_DSN":               str("database.dsn", func(c *Config) *storage.DSN { return &c.Database.DSN }),
		"PUSHD_WORKER_CONCURRENCY":         num("worker.concurrency", func(c *Config) *int { return &c.Worker.Concurrency }),
		"PUSHD_WORKER_CHUNK_SIZE":          num("worker.chunk_size", func(c *Config) *int { return &c.Worker.ChunkSize }),
		"PUSHD_WORKER_DEQUEUERS":           num("worker.dequeuers", func(c *Config) *int { return &c.Worker.Dequeuers }),
		"PUSHD_WORKER_TASK_CHECK_INTERVAL": dur("worker.task_check_interval", func(c *Config) *time.Duration { return &c.Worker.TaskCheckInterval }),
		"PUSHD_WORKER_SHUTDOWN_TIMEOUT":    dur("worker.shutdown_timeout", func(c *Config) *time.Duration { return &c.Worker.ShutdownTimeout }),
	}
}

// dur is the override of a duration key.
func dur(key string, field func(*Config) *time.Duration) override {
	return override{key, func(c *Config, v string) error {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("must be a duration such as 30s or 1m30s, not %q", v)
		}
		*field(c) = d
		return nil
	}}
}

// str is the override of a key of a string type: a plain string, a
// secret.Secret or a storage.DSN.
func str[T ~string](key string, field func(*Config) *T) override {
	return override{key, func(c *Config, v string) error { *field(c) = T(v); return nil }}
}

// applyEnv applies the overrides set in d's environment, recording a
// problem for each value that does not parse, and returns the keys it
// overrode with the variable that did.
func applyEnv(c *Config, d *decoder) map[string]string {
	overridden := make(map[string]string)
	for name, o := range overrides() {
		v, ok := d.env[name]
		if !ok {
			continue
		}
		overridden[o.key] = name
		if err := o.set(c, v); err != nil {
			d.problems = append(d.problems, Problem{Key: o.key, Rule: err.Error(), Env: name})
		}
	}
	return overridden
}

// resolvePaths makes relative file paths relative to c.Dir.
func (c *Config) resolvePaths() {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(c.Dir, *p)
		}
	}
	if p := c.Database.Path; p != ":memory:" && !strings.HasPrefix(p, "file:") {
		// SQLite's special names are not files.
		abs(&c.Database.Path)
	}
	for i := range c.Apps {
		for _, path := range c.Apps[i].files() {
			abs(path)
		}
	}
}
