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
// not keep. The SDK turns every transport error into a FirebaseError that
// carries only its text, so a refused service account (the token endpoint
// answering invalid_grant) would look like a network failure, and the SDK
// would retry it four times over seven seconds. The transport records the
// refusal and cancels the send instead.
type exchange struct {
	// attempts counts requests that reached the transport: zero means the
	// SDK refused the message itself.
	attempts int
	// authErr is the token endpoint's refusal of the credentials.
	authErr *oauth2.RetrieveError
	cancel  context.CancelFunc
}

type exchangeKey struct{}

// transport sits in front of the OAuth2 transport. The SDK calls it in the
// goroutine of the Send, so it writes the exchange without a lock.
type transport struct {
	next http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	x, _ := req.Context().Value(exchangeKey{}).(*exchange)
	if x != nil {
		x.attempts++
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil && x != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode >= 400 && re.Response.StatusCode < 500 {
			// Google refused the service account: retrying cannot help.
			x.authErr = re
			x.cancel()
		}
	}
	return resp, err
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
