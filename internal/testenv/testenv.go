// Package testenv decides what a test does when something it needs from
// the machine (Redis, PostgreSQL, a command) is missing: skip with the
// reason on a developer's machine, fail in CI (CI=true), where nothing that
// matters may be skipped.
package testenv

import (
	"cmp"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// InCI reports whether the tests run in CI.
func InCI() bool {
	ci := os.Getenv("CI")
	return strings.EqualFold(ci, "true") || ci == "1"
}

// Need reports that what is missing, and why, with a hint of how to provide
// it: the test fails in CI and is skipped elsewhere.
func Need(tb testing.TB, what string, err error, hint string) {
	tb.Helper()
	if InCI() {
		tb.Fatalf("%s is required in CI: %v (%s)", what, err, hint)
	}
	tb.Skipf("%s unavailable: %v (%s)", what, err, hint)
}

// RedisAddr is the Redis the tests use: PUSHD_REDIS_ADDR, or the local
// default.
func RedisAddr() string {
	return cmp.Or(os.Getenv("PUSHD_REDIS_ADDR"), "127.0.0.1:6379")
}

// Redis returns a client of Redis database db, flushed, closed when the
// test ends; without Redis the test is skipped, or fails in CI. go test
// runs packages in parallel and each flushes its own database, so each
// package owns its number: pushjob 14, cmd/pushd 13 (and 10 for its
// restart test), internal/providertoken 12, internal/apns 11,
// internal/dispatch 8; the bench harness (scripts/bench) takes 9.
func Redis(tb testing.TB, db int) *redis.Client {
	tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: RedisAddr(), DB: db})
	tb.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.FlushDB(ctx).Err(); err != nil {
		Need(tb, "Redis at "+RedisAddr(), err, "start redis-server or set PUSHD_REDIS_ADDR")
	}
	return c
}
