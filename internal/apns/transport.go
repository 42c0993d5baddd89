package apns

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"time"
)

// Connection settings. apns2 keeps its own in package variables that any
// importer may change; pushd sets them per transport instead.
const (
	dialTimeout  = 20 * time.Second
	tcpKeepAlive = 15 * time.Second
	// sendPingTimeout is how long a connection may be silent before it is
	// pinged: APNs drops idle connections without a word, and a ping finds
	// out before a push is lost on a dead one.
	sendPingTimeout = 15 * time.Second
	// pushTimeout bounds one push, dial included, when the caller's context
	// has no earlier deadline.
	pushTimeout = 30 * time.Second
)

// exchange is what the transport saw of one push that apns2's Response
// does not carry: Apple's Retry-After header, the status even when the body
// could not be read, and the provider token the push presented.
//
// apns2.Client.PushWithContext builds the request and reads the answer
// itself and exposes neither the response headers nor the request, so Send
// puts an exchange in the push's context and the transport, which sees both,
// fills it in. The alternative, sending the request with our own code and
// apns2's types, would duplicate apns2's header and body handling to gain
// nothing but these three fields.
type exchange struct {
	status     int
	retryAfter string
	bearer     string
}

type exchangeKey struct{}

// transport is the HTTP/2 transport of one apns2 client, with the
// exchange capture in front of it. It is net/http's own HTTP/2 (x/net's
// http2.Transport, which apns2 builds, is deprecated in its favour) limited
// to HTTP/2, as APNs speaks nothing else.
type transport struct {
	h2 *http.Transport
}

func newTransport(roots *x509.CertPool) *transport {
	var protos http.Protocols
	protos.SetHTTP2(true)
	return &transport{h2: &http.Transport{
		Protocols: &protos,
		TLSClientConfig: &tls.Config{
			// nil is the system roots: Apple's servers.
			RootCAs:    roots,
			MinVersion: tls.VersionTLS12,
		},
		DialContext:         (&net.Dialer{Timeout: dialTimeout, KeepAlive: tcpKeepAlive}).DialContext,
		TLSHandshakeTimeout: dialTimeout,
		// Apple asks providers to keep connections open rather than
		// dial per push: no idle timeout, and pings find dead ones.
		// Strict: a push past the server's stream limit (1000 at Apple)
		// waits for a stream instead of dialling another connection; a
		// stream freed a moment after its answer otherwise made bursts
		// of 1000 pushes open up to 20 connections, no faster than one.
		// A deliberate pool of connections is issue 4's.
		HTTP2: &http.HTTP2Config{SendPingTimeout: sendPingTimeout, StrictMaxConcurrentRequests: true},
	}}
}

// RoundTrip runs in the goroutine that called Push, so it may write the
// exchange without a lock.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	x, _ := req.Context().Value(exchangeKey{}).(*exchange)
	if x != nil {
		x.bearer = req.Header.Get("authorization")
	}
	resp, err := t.h2.RoundTrip(req)
	if x != nil && err == nil {
		x.status = resp.StatusCode
		x.retryAfter = resp.Header.Get("Retry-After")
	}
	return resp, err
}

// CloseIdleConnections is what apns2.Client.CloseIdleConnections calls.
func (t *transport) CloseIdleConnections() { t.h2.CloseIdleConnections() }
