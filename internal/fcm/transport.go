package fcm

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"time"

	"golang.org/x/oauth2"
)

const (
	dialTimeout = 20 * time.Second
	// requestTimeout bounds one HTTP attempt (the SDK makes up to five
	// per send) and one access-token fetch.
	requestTimeout = 30 * time.Second
)

// exchange is what the transport saw of one Send that the SDK's error does
// not keep, and how it keeps the SDK to one attempt.
//
// pushd retries in one place: the job, which waits for the provider's
// Retry-After or its own backoff and then sends only to the devices still
// waiting. Left alone, the SDK would also retry inside a send (503 and
// network errors, four times, after up to two minutes each), holding a
// fan-out slot all the while, and the job would then wait again on top.
// So the transport ends a send after its first unanswered or 5xx attempt:
// a network error cancels the send, and a 5xx reaches the SDK with a
// Retry-After past the SDK's two-minute limit, which makes it give up at
// once and build its usual error from the answer. The answer's own
// Retry-After is kept here.
//
// The SDK also turns every transport error into a FirebaseError that
// carries only its text, so a refused service account (the token endpoint
// answering invalid_grant) would look like a network failure; the
// transport records the refusal.
type exchange struct {
	// attempts counts requests that reached the transport: zero means the
	// SDK refused the message itself.
	attempts int
	// authErr is the token endpoint's refusal of the credentials.
	authErr *oauth2.RetrieveError
	// netErr is the error of an attempt that got no answer.
	netErr error
	// retryAfter is the Retry-After of a 5xx answer, as FCM sent it.
	retryAfter string
	cancel     context.CancelFunc
}

type exchangeKey struct{}

// sdkGiveUp is a Retry-After (in seconds) past the SDK's two-minute
// limit: given it, the SDK returns the answer rather than retrying.
const sdkGiveUp = "86400"

// transport sits in front of the OAuth2 transport. The SDK calls it in the
// goroutine of the Send, so it writes the exchange without a lock.
type transport struct {
	next http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	x, _ := req.Context().Value(exchangeKey{}).(*exchange)
	if x == nil {
		return t.next.RoundTrip(req)
	}
	x.attempts++
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode >= 400 && re.Response.StatusCode < 500 {
			// Google refused the service account: retrying cannot help.
			x.authErr = re
		} else {
			x.netErr = err
		}
		// The SDK checks the context before retrying and returns.
		x.cancel()
		return nil, err
	}
	if resp.StatusCode >= 500 {
		x.retryAfter = resp.Header.Get("Retry-After")
		resp.Header.Set("Retry-After", sdkGiveUp)
	}
	return resp, nil
}

// newBaseTransport is the HTTP/1.1 and HTTP/2 transport both the token
// fetches and the sends use. roots nil trusts the system roots.
func newBaseTransport(roots *x509.CertPool) *http.Transport {
	return &http.Transport{
		Proxy:             http.ProxyFromEnvironment,
		DialContext:       (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2: true,
		TLSClientConfig: &tls.Config{
			RootCAs:    roots,
			MinVersion: tls.VersionTLS12,
		},
		TLSHandshakeTimeout: dialTimeout,
		// Only used where HTTP/2 is not: HTTP/2 multiplexes one connection.
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
	}
}
