package dispatch

import (
	"testing"

	"github.com/pushd/pushd/internal/outcome"
)

// The transitions, checked pair by pair against the table at the top of
// state.go.
func TestDeviceTransitions(t *testing.T) {
	answers := []outcome.Outcome{
		outcome.Delivered, outcome.EnvCorrected, outcome.InvalidToken, outcome.Rejected,
		outcome.AuthError, outcome.NoCredentials, outcome.Retrying,
	}
	closing := []outcome.Outcome{outcome.Expired, outcome.Failed, outcome.NoDevice}
	open := append(append([]outcome.Outcome{}, answers...), closing...)
	final := []outcome.Outcome{
		outcome.Delivered, outcome.EnvCorrected, outcome.InvalidToken, outcome.Rejected, outcome.AuthError,
		outcome.NoCredentials, outcome.Failed, outcome.Expired, outcome.NoDevice,
	}
	if outcome.Outcome("").Final() {
		t.Error("no row yet is final")
	}
	for _, from := range []outcome.Outcome{"", outcome.Retrying} {
		for _, to := range open {
			if !deviceMay(from, to) {
				t.Errorf("%q → %s refused, want allowed", from, to)
			}
		}
		if deviceMay(from, outcome.Muted) {
			t.Errorf("%q → muted allowed: muted is a recipient's", from)
		}
	}
	for _, from := range final {
		if !from.Final() {
			t.Errorf("%s is not final", from)
		}
		for _, to := range append(open, outcome.Muted) {
			if deviceMay(from, to) {
				t.Errorf("%s → %s allowed: a final state never moves", from, to)
			}
		}
	}
}

func TestRecipientTransitions(t *testing.T) {
	for _, c := range []struct {
		from       outcome.Outcome
		hasDevices bool
		to         outcome.Outcome
		want       bool
	}{
		{"", false, outcome.Muted, true},
		{"", false, outcome.NoDevice, true},
		{"", false, outcome.Expired, true},
		{"", false, outcome.Delivered, false},
		{"", false, outcome.Retrying, false},
		// A recipient with devices on record: its devices say.
		{"", true, outcome.NoDevice, false},
		{"", true, outcome.Expired, false},
		// Written once.
		{outcome.Muted, false, outcome.Expired, false},
		{outcome.NoDevice, false, outcome.Expired, false},
		{outcome.Expired, false, outcome.Muted, false},
	} {
		if got := recipientMay(c.from, c.hasDevices, c.to); got != c.want {
			t.Errorf("recipient %q (devices %v) → %s: %v, want %v", c.from, c.hasDevices, c.to, got, c.want)
		}
	}
}
