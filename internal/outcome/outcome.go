// Package outcome is the one vocabulary for what happened to a push: metric
// labels, counters, traces and logs all use these names (DESIGN.md,
// "Outcomes").
package outcome

// Outcome is what became of one recipient's device, or of a recipient who
// had none to push to.
type Outcome string

const (
	// Delivered: the provider accepted the push.
	Delivered Outcome = "delivered"
	// Muted: the recipient muted the conversation.
	Muted Outcome = "muted"
	// NoDevice: the recipient has no valid installation.
	NoDevice Outcome = "no_device"
	// InvalidToken: the provider says the token is dead; it is marked
	// invalid with the provider's reason.
	InvalidToken Outcome = "invalid_token"
	// EnvCorrected: delivered after switching APNs environment.
	EnvCorrected Outcome = "env_corrected"
	// Retrying: a transient failure; the job is retried for this device.
	Retrying Outcome = "retrying"
	// Failed: transient failures outlasted the retries.
	Failed Outcome = "failed"
	// Rejected: the provider refused the content or configuration; a bug
	// to fix, never retried.
	Rejected Outcome = "rejected"
	// AuthError: credentials expired or wrong; operator action, and the
	// token is never blamed.
	AuthError Outcome = "auth_error"
	// NoCredentials: the app has no credentials for this provider or
	// environment.
	NoCredentials Outcome = "no_credentials"
	// Expired: the job's expiry passed before the push was sent.
	Expired Outcome = "expired"
)

// All lists every outcome, in the order reports show them.
func All() []Outcome {
	return []Outcome{Delivered, Muted, NoDevice, InvalidToken, EnvCorrected, Retrying, Failed, Rejected, AuthError, NoCredentials, Expired}
}

// Final reports whether a device with this outcome must not be pushed again
// for the same message. No outcome yet ("") is not final.
func (o Outcome) Final() bool { return o != "" && o != Retrying }
