package apns

import (
	"net/http"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/outcome"
	"github.com/pushd/pushd/internal/retryafter"
)

// TestClassify walks every row of the table: each reason Apple documents
// (plus pushsim's PayloadNotJSONObject) with the status Apple sends it
// with, then the fallbacks for reasons Apple may add.
func TestClassify(t *testing.T) {
	rows := []struct {
		status int
		reason string
		want   outcome.Outcome
	}{
		{200, "", outcome.Delivered},

		{410, "Unregistered", outcome.InvalidToken},
		{410, "ExpiredToken", outcome.InvalidToken},
		{400, "BadDeviceToken", outcome.InvalidToken},
		{400, "DeviceTokenNotForTopic", outcome.InvalidToken},

		{403, "InvalidProviderToken", outcome.AuthError},
		{403, "MissingProviderToken", outcome.AuthError},
		{403, "BadCertificate", outcome.AuthError},
		{403, "BadCertificateEnvironment", outcome.AuthError},
		{403, "Forbidden", outcome.AuthError},

		{403, "ExpiredProviderToken", outcome.Retrying},
		{429, "TooManyProviderTokenUpdates", outcome.Retrying},
		{429, "TooManyRequests", outcome.Retrying},
		{500, "InternalServerError", outcome.Retrying},
		{503, "ServiceUnavailable", outcome.Retrying},
		{503, "Shutdown", outcome.Retrying},
		{400, "IdleTimeout", outcome.Retrying},

		{413, "PayloadTooLarge", outcome.Rejected},
		{400, "PayloadEmpty", outcome.Rejected},
		{400, "PayloadNotJSONObject", outcome.Rejected},
		{400, "BadTopic", outcome.Rejected},
		{400, "TopicDisallowed", outcome.Rejected},
		{400, "MissingTopic", outcome.Rejected},
		{400, "BadPriority", outcome.Rejected},
		{400, "BadMessageId", outcome.Rejected},
		{400, "BadCollapseId", outcome.Rejected},
		{400, "BadExpirationDate", outcome.Rejected},
		{400, "InvalidPushType", outcome.Rejected},
		{400, "MissingDeviceToken", outcome.Rejected},
		{400, "DuplicateHeaders", outcome.Rejected},
		{404, "BadPath", outcome.Rejected},
		{405, "MethodNotAllowed", outcome.Rejected},

		// Reasons Apple has not documented fall back on the status.
		{410, "", outcome.InvalidToken},
		{410, "SomethingNew", outcome.InvalidToken},
		{401, "", outcome.AuthError},
		{403, "SomethingNew", outcome.AuthError},
		{429, "", outcome.Retrying},
		{500, "", outcome.Retrying},
		{502, "", outcome.Retrying},
		{504, "SomethingNew", outcome.Retrying},
		{400, "SomethingNew", outcome.Rejected},
		{404, "", outcome.Rejected},
		{413, "", outcome.Rejected},
		// Not an answer Apple gives: something in between sent it.
		{302, "", outcome.Retrying},
		{204, "", outcome.Retrying},
	}
	for _, r := range rows {
		if got := classify(r.status, r.reason); got != r.want {
			t.Errorf("classify(%d, %q) = %s, want %s", r.status, r.reason, got, r.want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-3", 0},
		{"7", 7 * time.Second},
		{"3600", time.Hour},
		{"99999999999", 24 * time.Hour}, // capped, never overflowing
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"soon", 0},
	} {
		if got := retryafter.Parse(c.in, now); got != c.want {
			t.Errorf("retryafter.Parse(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}
