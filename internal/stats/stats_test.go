package stats

import (
	"strings"
	"testing"

	"github.com/pushd/pushd/internal/outcome"
)

// Devices count once by final outcome and why; attempts by provider, with
// the provider's code as reason and any longer text as "other", so that
// error messages cannot grow the label set without bound.
func TestCounters(t *testing.T) {
	var c Counters
	c.Observe("chat", outcome.Delivered, "", 2)
	c.Observe("chat", outcome.NoDevice, "all_invalid", 1)
	c.Attempt("chat", "apns", outcome.Retrying, "ServiceUnavailable", 1)
	c.Attempt("chat", "apns", outcome.Retrying, "ServiceUnavailable", 1)
	c.Attempt("chat", "fcm", outcome.Retrying, "apns: dial tcp 10.0.0.1:443: connection refused", 1)
	c.Attempt("chat", "fcm", outcome.Delivered, "", 1)
	c.JobRejected("invalid_job")
	var b strings.Builder
	if _, err := c.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`pushd_pushes_total{app="chat",outcome="delivered",reason=""} 2`,
		`pushd_pushes_total{app="chat",outcome="no_device",reason="all_invalid"} 1`,
		`pushd_attempts_total{app="chat",provider="apns",outcome="retrying",reason="ServiceUnavailable"} 2`,
		`pushd_attempts_total{app="chat",provider="fcm",outcome="retrying",reason="other"} 1`,
		`pushd_attempts_total{app="chat",provider="fcm",outcome="delivered",reason=""} 1`,
		`pushd_jobs_rejected_total{reason="invalid_job"} 1`,
		"# TYPE pushd_attempts_total counter",
	} {
		if !strings.Contains(b.String(), want+"\n") {
			t.Errorf("exposition lacks %q:\n%s", want, b.String())
		}
	}
}
