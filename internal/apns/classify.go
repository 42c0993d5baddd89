package apns

import (
	"net/http"

	"github.com/sideshow/apns2"

	"github.com/pushd/pushd/internal/outcome"
)

// reasonPayloadNotJSONObject is the reason pushsim gives for a body that is
// JSON but not an object. Apple documents no reason for it (it answers 400
// with one of its payload reasons); the simulator names it, and it is a
// refused payload either way.
const reasonPayloadNotJSONObject = "PayloadNotJSONObject"

// classify maps one APNs answer, its HTTP status and Apple's reason, to an
// outcome (DESIGN.md, "Outcomes"; Apple's "Handling notification responses
// from APNs"). It is the one place that knows the table: Send, the tests
// and the documentation all follow it.
//
// The reason decides where Apple gives one, because Apple's reasons are
// finer than its statuses: 400 covers a dead token, a bad header and an
// idle connection alike. A reason Apple adds later falls back on the status.
func classify(status int, reason string) outcome.Outcome {
	if status == http.StatusOK {
		return outcome.Delivered
	}
	switch reason {
	// The token is dead. A BadDeviceToken may instead mean the token
	// belongs to the other environment: BatchSender (batch.go) tries
	// that environment once before marking the token.
	case apns2.ReasonUnregistered, // 410
		apns2.ReasonExpiredToken,           // 410
		apns2.ReasonBadDeviceToken,         // 400
		apns2.ReasonDeviceTokenNotForTopic: // 400: a token of another app
		return outcome.InvalidToken

	// The credentials are wrong or revoked: an operator must act, and the
	// device token is not to blame.
	case apns2.ReasonInvalidProviderToken, // 403
		apns2.ReasonMissingProviderToken,      // 403
		apns2.ReasonBadCertificate,            // 403
		apns2.ReasonBadCertificateEnvironment, // 403
		apns2.ReasonForbidden:                 // 403
		return outcome.AuthError

	// Transient: worth the same push again later. ExpiredProviderToken is
	// retried once inside Send with a fresh token before it lands here.
	case apns2.ReasonExpiredProviderToken, // 403
		apns2.ReasonTooManyProviderTokenUpdates, // 429
		apns2.ReasonTooManyRequests,             // 429: too many to one device
		apns2.ReasonInternalServerError,         // 500
		apns2.ReasonServiceUnavailable,          // 503
		apns2.ReasonShutdown,                    // 503: the server is going away
		apns2.ReasonIdleTimeout:                 // 400: the connection idled out
		return outcome.Retrying

	// The content or headers are wrong: a bug to fix, and the same push
	// would be refused again.
	case apns2.ReasonPayloadTooLarge, // 413
		apns2.ReasonPayloadEmpty,       // 400
		reasonPayloadNotJSONObject,     // 400 (pushsim)
		apns2.ReasonBadTopic,           // 400
		apns2.ReasonTopicDisallowed,    // 400
		apns2.ReasonMissingTopic,       // 400
		apns2.ReasonBadPriority,        // 400
		apns2.ReasonBadMessageID,       // 400
		apns2.ReasonBadCollapseID,      // 400
		apns2.ReasonBadExpirationDate,  // 400
		apns2.ReasonInvalidPushType,    // 400
		apns2.ReasonMissingDeviceToken, // 400
		apns2.ReasonDuplicateHeaders,   // 400
		apns2.ReasonBadPath,            // 404
		apns2.ReasonMethodNotAllowed:   // 405
		return outcome.Rejected
	}
	switch {
	case status == http.StatusGone:
		return outcome.InvalidToken
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return outcome.AuthError
	case status == http.StatusTooManyRequests || status >= 500:
		return outcome.Retrying
	case status >= 400:
		return outcome.Rejected
	}
	// Apple answers nothing but 200 and 4xx/5xx; anything else came from
	// something between us (a proxy, a captive portal) and is worth trying
	// again rather than blaming the token or the content.
	return outcome.Retrying
}
