// Package testenv decides what a test does when something it needs from
// the machine (Redis, PostgreSQL, a command) is missing: skip with the
// reason on a developer's machine, fail in CI (CI=true), where nothing that
// matters may be skipped.
package testenv

import (
	"os"
	"strings"
	"testing"
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
