package apns

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
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
	// pingTimeout is how long a ping may go unanswered before the
	// connection is declared dead and closed.
	pingTimeout = 5 * time.Second
	// pushTimeout bounds one push, dial included, when the caller's context
	// has no earlier deadline.
	pushTimeout = 30 * time.Second
	// defaultMaxConns is Config.MaxConnsPerGateway's default.
	defaultMaxConns = 4
	// defaultIdleTimeout is Config.IdleTimeout's default. Apple asks
	// providers to keep connections open rather than dial per push; a
	// connection nobody used for this long (an extra one opened for a
	// burst, or a gateway nobody pushes to) is closed all the same.
	defaultIdleTimeout = 10 * time.Minute
)

// exchange is what the transport saw of one push that apns2's Response
// does not carry: Apple's Retry-After header, the status even when the body
// could not be read, and the provider token the push presented (the JWT,
// without "bearer ").
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

// transport is the HTTP/2 transport of one apns2 client (one app and
// environment): a pool of long-lived HTTP/2 connections to the gateway,
// with the exchange capture and, for token authentication, the provider
// token in front of it.
//
// The token is set here rather than by apns2, which signs a new one by
// its own clock whenever the one it holds is 50 minutes old: a token of
// its own that the rest of the deployment does not know is what Apple
// refuses as TooManyProviderTokenUpdates.
//
// Each connection carries at most as many pushes as the server's
// MAX_CONCURRENT_STREAMS allows (1000 at Apple). A push that finds every
// connection full opens another, up to maxConns; past that it waits,
// holding no goroutine but its caller's, for a stream to free up or its
// context to end. A connection that dies (dropped, GOAWAY, an unanswered
// ping, idle too long) is noticed by its state hook and dropped from the
// pool; pushes in flight on it fail (Retrying) and the next ones dial anew.
//
// The connections are net/http's own HTTP/2 (http.Transport.NewClientConn,
// which gives one connection's Reserve, Available and state hook),
// limited to HTTP/2, as APNs speaks nothing else. net/http's pooling was
// the alternative: with StrictMaxConcurrentRequests it keeps one connection
// per host however busy, without it there is no cap on connections.
type transport struct {
	h2       *http.Transport
	maxConns int
	// auth is the provider token's signer; nil for a client that
	// authenticates with a certificate.
	auth *signer

	mu      sync.Mutex
	addr    string // host:port of the gateway, set on first use
	conns   []*conn
	dialing int
	// streams is the server's stream limit as a settled connection showed
	// it; zero until one has.
	streams int

	// wake is closed, and cleared, when a connection frees a stream, dies
	// or is dialled: every waiter looks again. It is nil when nobody
	// waits. wmu is separate from mu because state hooks can run inside
	// Reserve, which is called with mu held.
	wmu  sync.Mutex
	wake chan struct{}
}

// conn is one connection of the pool.
//
// Until the server's SETTINGS arrive, net/http assumes it may open 100
// streams, and a server that allows fewer refuses the rest
// (REFUSED_STREAM), failing those pushes. Nothing tells when SETTINGS
// arrived, but the server sends them before any answer: so a connection
// that has not answered yet (not settled) takes only as many pushes as
// the pool has seen the server allow, or one.
type conn struct {
	cc      *http.ClientConn
	settled atomic.Bool
}

// newTransport returns a gateway's transport. It authenticates with cert,
// a client certificate, or with auth's provider token: one of them is nil.
func newTransport(roots *x509.CertPool, cert *tls.Certificate, auth *signer, maxConns int, idle time.Duration) *transport {
	if maxConns <= 0 {
		maxConns = defaultMaxConns
	}
	if idle <= 0 {
		idle = defaultIdleTimeout
	}
	var protos http.Protocols
	protos.SetHTTP2(true)
	var certs []tls.Certificate
	if cert != nil {
		certs = []tls.Certificate{*cert}
	}
	return &transport{maxConns: maxConns, auth: auth, h2: &http.Transport{
		Protocols: &protos,
		TLSClientConfig: &tls.Config{
			// nil is the system roots: Apple's servers.
			RootCAs:      roots,
			Certificates: certs,
			MinVersion:   tls.VersionTLS12,
		},
		DialContext:         (&net.Dialer{Timeout: dialTimeout, KeepAlive: tcpKeepAlive}).DialContext,
		TLSHandshakeTimeout: dialTimeout,
		IdleConnTimeout:     idle,
		HTTP2: &http.HTTP2Config{
			SendPingTimeout: sendPingTimeout,
			PingTimeout:     pingTimeout,
			// Each connection waits for a stream rather than overshoot the
			// server's limit; the pool, not net/http, decides on more
			// connections.
			StrictMaxConcurrentRequests: true,
		},
	}}
}

// RoundTrip runs in the goroutine that called Push, so it may write the
// exchange without a lock.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	x, _ := req.Context().Value(exchangeKey{}).(*exchange)
	if t.auth != nil {
		bearer, err := t.auth.bearer(req.Context())
		if err != nil {
			closeBody(req)
			return nil, err
		}
		// A RoundTripper must not change its caller's request: the
		// header goes on a copy.
		r := *req
		r.Header = req.Header.Clone()
		r.Header.Set("authorization", "bearer "+bearer)
		req = &r
		if x != nil {
			x.bearer = bearer
		}
	}
	c, err := t.acquire(req.Context(), req.URL)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	resp, err := c.cc.RoundTrip(req)
	if err == nil && !c.settled.Load() {
		t.settle(c)
	}
	if x != nil && err == nil {
		x.status = resp.StatusCode
		x.retryAfter = resp.Header.Get("Retry-After")
	}
	return resp, err
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// acquire returns a connection with a stream reserved for one request:
// the first connection with a free stream, a new one when all are full,
// have answered once, none is being dialled and fewer than maxConns are
// open, or else the first to free a stream.
func (t *transport) acquire(ctx context.Context, u *url.URL) (*conn, error) {
	var wake chan struct{}
	for {
		t.mu.Lock()
		if t.addr == "" {
			t.addr = hostPort(u)
		}
		if cc := t.reserveLocked(); cc != nil {
			t.mu.Unlock()
			return cc, nil
		}
		if wake == nil {
			// Nothing free: take the wake channel before looking
			// again, so a stream freed in between is not missed.
			t.mu.Unlock()
			wake = t.waitChan()
			continue
		}
		if len(t.conns)+t.dialing < t.maxConns && t.dialing == 0 && t.settledLocked() {
			t.dialing++
			addr := t.addr
			t.mu.Unlock()
			c, err := t.dial(ctx, addr)
			if err != nil {
				return nil, err
			}
			if c != nil {
				return c, nil
			}
			// Someone else took every stream it has; look again.
			wake = nil
			continue
		}
		t.mu.Unlock()
		select {
		case <-wake:
			wake = nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// settledLocked reports whether every connection has answered once, so
// that its stream limit is known. Until then a connection carries few
// pushes, and dialling another for each push that finds it full would
// open every allowed connection at a cold start (four for 17 pushes):
// pushes wait for the limit instead, one round trip, and a new
// connection is dialled only when the known streams are all taken.
func (t *transport) settledLocked() bool {
	for _, c := range t.conns {
		if !c.settled.Load() {
			return false
		}
	}
	return true
}

// reserveLocked drops dead connections and reserves a stream on the first
// live connection with one free.
func (t *transport) reserveLocked() *conn {
	live := t.conns[:0]
	var found *conn
	for _, c := range t.conns {
		cc := c.cc
		if cc.Err() != nil || (cc.Available() == 0 && cc.InFlight() == 0) {
			// Dead, or going away (GOAWAY, idle timeout) with nothing
			// left in flight: it will never take another request.
			cc.Close()
			continue
		}
		live = append(live, c)
		if found == nil && t.reserve(c) {
			found = c
		}
	}
	clear(t.conns[len(live):])
	t.conns = live
	return found
}

// reserve reserves a stream on c, within the server's known limit while c
// is not settled. Called with mu held: reservations count as in flight, so
// the check and the reservation are one step for every other reserver.
func (t *transport) reserve(c *conn) bool {
	if !c.settled.Load() && c.cc.InFlight() >= max(t.streams, 1) {
		return false
	}
	return c.cc.Reserve() == nil
}

// settle marks c as having answered: its SETTINGS are in, so its own
// limit holds, and the pool learns the server's limit for new connections.
func (t *transport) settle(c *conn) {
	t.mu.Lock()
	if !c.settled.Load() {
		c.settled.Store(true)
		if n := c.cc.Available() + c.cc.InFlight(); n > 0 {
			t.streams = n
		}
	}
	t.mu.Unlock()
	t.signal()
}

// dial opens a new connection, adds it to the pool and returns it with a
// stream reserved, or nil if others took all its streams first. The dial
// is bounded by dialTimeout and by ctx; the connection outlives ctx.
func (t *transport) dial(ctx context.Context, addr string) (*conn, error) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dialTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	cc, err := t.h2.NewClientConn(dctx, "https", addr)
	if err == nil && ctx.Err() != nil {
		cc.Close()
		err = ctx.Err()
	}
	if err != nil {
		t.mu.Lock()
		t.dialing--
		t.mu.Unlock()
		t.signal()
		return nil, err
	}
	cc.SetStateHook(func(*http.ClientConn) { t.signal() })
	c := &conn{cc: cc}
	t.mu.Lock()
	t.dialing--
	t.conns = append(t.conns, c)
	if !t.reserve(c) {
		c = nil
	}
	t.mu.Unlock()
	t.signal()
	return c, nil
}

// waitChan returns the channel that is closed at the next state change.
func (t *transport) waitChan() chan struct{} {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if t.wake == nil {
		t.wake = make(chan struct{})
	}
	return t.wake
}

// signal wakes every waiter. It is a state hook, so it may run inside
// Reserve, RoundTrip or Body.Close: it takes wmu only.
func (t *transport) signal() {
	t.wmu.Lock()
	if t.wake != nil {
		close(t.wake)
		t.wake = nil
	}
	t.wmu.Unlock()
}

// CloseIdleConnections closes the connections with nothing in flight; it
// is what apns2.Client.CloseIdleConnections calls. A later push dials
// again.
func (t *transport) CloseIdleConnections() {
	t.mu.Lock()
	live := t.conns[:0]
	for _, c := range t.conns {
		// Reservations count as in flight and are made under mu, so an
		// idle connection here has no push about to start on it.
		if c.cc.InFlight() == 0 || c.cc.Err() != nil {
			c.cc.Close()
			continue
		}
		live = append(live, c)
	}
	clear(t.conns[len(live):])
	t.conns = live
	t.mu.Unlock()
	t.signal()
}

func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	return net.JoinHostPort(u.Hostname(), "443")
}
