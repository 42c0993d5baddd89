package fcm

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

const (
	dialTimeout = 20 * time.Second
	// requestTimeout bounds one HTTP attempt and one access-token fetch.
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
// So the transport ends a send after its first failed attempt:
//
//   - a network error, before the answer or while its body is read,
//     cancels the send: the SDK checks the context before retrying;
//   - a 5xx reaches the SDK with a Retry-After past the SDK's two-minute
//     limit, which makes it give up at once and build its usual error
//     from the answer; the answer's own Retry-After is kept here;
//   - should the SDK try again regardless, the attempt fails without
//     leaving the machine.
//
// The SDK also turns every transport error into a FirebaseError that
// carries only its text, so a refused service account (the token endpoint
// answering invalid_grant) would look like a network failure; the
// transport records the refusal.
//
// The SDK calls the transport in the goroutine of the Send, and reads the
// body there too, so the exchange needs no lock.
type exchange struct {
	// attempts counts requests that reached the transport: zero means the
	// SDK refused the message itself.
	attempts int
	// authErr is the token endpoint's refusal of the credentials.
	authErr *oauth2.RetrieveError
	// netErr is the error of an attempt that got no (whole) answer.
	netErr error
	// retryAfter is the Retry-After of a 5xx answer, as FCM sent it.
	retryAfter string
	cancel     context.CancelFunc
}

type exchangeKey struct{}

// sdkGiveUp is a Retry-After (in seconds) past the SDK's two-minute
// limit: given it, the SDK returns the answer rather than retrying.
const sdkGiveUp = "86400"

// errOneAttempt fails an attempt the SDK makes after the first.
var errOneAttempt = errors.New("fcm: one attempt per send; the job retries")

// transport authorizes FCM requests with the access token and keeps the
// SDK to one attempt per send (see exchange).
type transport struct {
	tokens *tokenCache
	base   http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	x, _ := req.Context().Value(exchangeKey{}).(*exchange)
	if x != nil {
		x.attempts++
		if x.attempts > 1 {
			closeBody(req)
			x.cancel()
			return nil, errOneAttempt
		}
	}
	tok, err := t.tokens.token(req.Context())
	if err != nil {
		closeBody(req)
		if x != nil {
			var re *oauth2.RetrieveError
			if errors.As(err, &re) && refused(re) {
				// Google refused the service account: retrying
				// cannot help.
				x.authErr = re
			} else {
				x.netErr = err
			}
			x.cancel()
		}
		return nil, err
	}
	r := req.Clone(req.Context())
	tok.SetAuthHeader(r)
	resp, err := t.base.RoundTrip(r)
	if x == nil {
		return resp, err
	}
	if err != nil {
		x.netErr = err
		x.cancel()
		return nil, err
	}
	if resp.StatusCode >= 500 {
		x.retryAfter = resp.Header.Get("Retry-After")
		resp.Header.Set("Retry-After", sdkGiveUp)
	}
	resp.Body = &watchedBody{ReadCloser: resp.Body, x: x}
	return resp, nil
}

// refused reports whether the token endpoint refused the credentials
// themselves (RFC 6749 section 5.2: invalid_grant, invalid_client,
// unauthorized_client...), rather than being busy or slow.
func refused(re *oauth2.RetrieveError) bool {
	if re.Response == nil {
		return false
	}
	switch re.Response.StatusCode {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
		return true
	}
	return false
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// watchedBody ends the send when the answer breaks off mid-body.
type watchedBody struct {
	io.ReadCloser
	x *exchange
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && b.x.netErr == nil {
		b.x.netErr = err
		b.x.cancel()
	}
	return n, err
}

// tokenCache hands out the access token. Sends waiting for a fetch share
// one, and each gives up when its own context ends, where x/oauth2's
// transport would make every send wait, one after another, for a token
// endpoint that hangs.
type tokenCache struct {
	src oauth2.TokenSource

	mu    sync.Mutex
	tok   *oauth2.Token
	fetch chan struct{} // closed when the fetch under way ends; nil if none
	err   error         // the last fetch's error
}

func (c *tokenCache) token(ctx context.Context) (*oauth2.Token, error) {
	c.mu.Lock()
	if c.tok.Valid() {
		tok := c.tok
		c.mu.Unlock()
		return tok, nil
	}
	done := c.fetch
	if done == nil {
		done = make(chan struct{})
		c.fetch = done
		// The fetch outlives a send that gives up: the next one may
		// find its token.
		go func() {
			tok, err := c.src.Token()
			c.mu.Lock()
			if err == nil {
				c.tok = tok
			}
			c.err, c.fetch = err, nil
			c.mu.Unlock()
			close(done)
		}()
	}
	c.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok.Valid() {
		return c.tok, nil
	}
	if c.err != nil {
		return nil, c.err
	}
	return nil, errors.New("fcm: access token expired as it arrived")
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
