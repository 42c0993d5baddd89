package fcm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"firebase.google.com/go/v4/errorutils"
	"firebase.google.com/go/v4/messaging"
	"golang.org/x/oauth2"

	"github.com/pushd/pushd/internal/outcome"
	"github.com/pushd/pushd/internal/retryafter"
)

// minQuotaBackoff is the least wait after QUOTA_EXCEEDED: Google asks
// senders to back off at least a minute when over the project's quota.
const minQuotaBackoff = time.Minute

// notValidToken is the text of FCM's INVALID_ARGUMENT for a registration
// token that is not one; every other INVALID_ARGUMENT is about the message.
const notValidToken = "not a valid FCM registration token"

// classify maps a failed send to an outcome (DESIGN.md, "Outcomes"). err
// is the SDK's own error: its messaging.Is* helpers look at its concrete
// type and see nothing through a wrapper. The table:
//
//	token endpoint refused the service account (4xx)  auth_error
//	UNREGISTERED, SENDER_ID_MISMATCH                  invalid_token
//	INVALID_ARGUMENT "not a valid FCM registration token"  invalid_token
//	INVALID_ARGUMENT, anything else                    rejected
//	QUOTA_EXCEEDED, any other 429                      retrying, Retry-After at least a minute
//	UNAVAILABLE (503), INTERNAL (500)                  retrying, Retry-After as sent
//	THIRD_PARTY_AUTH_ERROR (APNs key refused)          auth_error
//	other 401, 403 (access token, project permission)  auth_error
//	other 5xx                                          retrying
//	other 4xx (404 without UNREGISTERED: bad endpoint) rejected
//	no answer: network, timeout, cancelled             retrying
//	refused by the SDK before sending                  rejected
func classify(ctx context.Context, err error, x *exchange, now time.Time) Result {
	if x.authErr != nil {
		return Result{
			Outcome: outcome.AuthError,
			Code:    oauthErrorCode(x.authErr),
			Err:     fmt.Errorf("fcm: access token: %w", x.authErr),
		}
	}
	resp := errorutils.HTTPResponse(err)
	if resp == nil {
		switch {
		case x.netErr != nil:
			// No answer: connection refused or dropped, a timeout, or
			// the caller gave up. The SDK's error is only that the send
			// was cut short; the network's says why.
			return Result{Outcome: outcome.Retrying, Err: fmt.Errorf("fcm: no answer: %w", x.netErr)}
		case x.attempts == 0 && ctx.Err() == nil:
			// The SDK checked the message and refused it (no target,
			// two targets, a bad TTL or color...): a bug to fix.
			return Result{Outcome: outcome.Rejected, Err: err}
		}
		return Result{Outcome: outcome.Retrying, Err: err}
	}
	code, field := errorDetail(resp)
	r := Result{Code: code, Err: err}
	ra := resp.Header.Get("Retry-After")
	if resp.StatusCode >= 500 {
		// The transport replaced it to stop the SDK retrying.
		ra = x.retryAfter
	}
	retryAfter := retryafter.Parse(ra, now)
	switch {
	case messaging.IsUnregistered(err), messaging.IsSenderIDMismatch(err):
		r.Outcome = outcome.InvalidToken
	case messaging.IsInvalidArgument(err):
		r.Outcome = outcome.Rejected
		if strings.Contains(err.Error(), notValidToken) {
			r.Outcome = outcome.InvalidToken
		} else {
			r.Field = field
		}
	case messaging.IsQuotaExceeded(err), resp.StatusCode == http.StatusTooManyRequests:
		// A 429 without FCM's detail (RESOURCE_EXHAUSTED, from
		// something in between) is throttling all the same.
		r.Outcome, r.RetryAfter, r.Throttled = outcome.Retrying, max(retryAfter, minQuotaBackoff), true
	case messaging.IsUnavailable(err), messaging.IsInternal(err):
		r.Outcome, r.RetryAfter = outcome.Retrying, retryAfter
	case messaging.IsThirdPartyAuthError(err):
		r.Outcome = outcome.AuthError
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		r.Outcome = outcome.AuthError
	case resp.StatusCode >= 500:
		r.Outcome, r.RetryAfter = outcome.Retrying, retryAfter
	case resp.StatusCode >= 400:
		r.Outcome = outcome.Rejected
	default:
		// Not an answer FCM gives; something in between sent it.
		r.Outcome, r.RetryAfter = outcome.Retrying, retryAfter
	}
	return r
}

// errorDetail reads FCM's error body: the code is FCM's errorCode from
// the FcmError detail, else the google.rpc status (PERMISSION_DENIED...),
// else the HTTP status text; field is the first field a BadRequest detail
// names (message.android.ttl...). The SDK keeps the body buffered in the
// error's response; it is put back for whoever reads it next.
func errorDetail(resp *http.Response) (code, field string) {
	code = http.StatusText(resp.StatusCode)
	if resp.Body == nil {
		return code, ""
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(b))
	var body struct {
		Error struct {
			Status  string `json:"status"`
			Details []struct {
				Type            string `json:"@type"`
				ErrorCode       string `json:"errorCode"`
				FieldViolations []struct {
					Field string `json:"field"`
				} `json:"fieldViolations"`
			} `json:"details"`
		} `json:"error"`
	}
	if err != nil || json.Unmarshal(b, &body) != nil {
		return code, ""
	}
	if body.Error.Status != "" {
		code = body.Error.Status
	}
	for _, d := range body.Error.Details {
		switch d.Type {
		case "type.googleapis.com/google.firebase.fcm.v1.FcmError":
			if d.ErrorCode != "" {
				code = d.ErrorCode
			}
		case "type.googleapis.com/google.rpc.BadRequest":
			if len(d.FieldViolations) > 0 && field == "" {
				field = d.FieldViolations[0].Field
			}
		}
	}
	return code, field
}

// oauthErrorCode is the token endpoint's "error" (RFC 6749 section 5.2).
// x/oauth2's JWT flow leaves RetrieveError.ErrorCode empty, so the body is
// read here.
func oauthErrorCode(re *oauth2.RetrieveError) string {
	if re.ErrorCode != "" {
		return re.ErrorCode
	}
	var body struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(re.Body, &body) == nil && body.Error != "" {
		return body.Error
	}
	return http.StatusText(re.Response.StatusCode)
}
