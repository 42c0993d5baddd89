// Package pushsim simulates the APNs provider API and the FCM HTTP v1 API
// (with Google's OAuth2 token endpoint) closely enough that the real clients,
// github.com/sideshow/apns2 and firebase.google.com/go/v4/messaging, talk to
// it unchanged but for the endpoint they are given and the CA they trust.
//
// Device tokens are minted with a fate (see Minter), so a test knows what
// each push should meet without sharing a database with the simulator. Faults
// (errors, GOAWAY, dropped connections, latency) are injected by rate or in
// timed windows, and a control API reports what each listener saw.
package pushsim

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultTeamID is the Apple team id of keys and certificates the simulator
// makes when none is given.
const DefaultTeamID = "SIMTEAM001"

// Config configures a simulator. The zero value works: fresh CA, random
// loopback ports, seed "pushsim".
type Config struct {
	// Seed is the token-minting seed (see Minter).
	Seed string
	// DefaultFate is what happens to well-formed tokens the seed did not
	// mint; zero is FateValid.
	DefaultFate Fate
	// CA signs the server certificate and is the only issuer trusted for
	// APNs client certificates; nil makes a new one.
	CA *CA
	// ServerCert is the listeners' certificate; nil has CA issue one.
	ServerCert *tls.Certificate

	// Listen addresses; empty is 127.0.0.1 on a random port.
	APNsProductionAddr  string
	APNsDevelopmentAddr string
	FCMAddr             string
	ControlAddr         string

	// MaxConcurrentStreams is the HTTP/2 setting the APNs listeners
	// advertise; zero is 1000, as Apple's servers do.
	MaxConcurrentStreams int
	// AccessTokenTTL is the lifetime of issued OAuth2 access tokens; zero
	// is one hour.
	AccessTokenTTL time.Duration
	// ProviderTokenInterval is the least time between two new APNs provider
	// tokens for one key; zero is Apple's 20 minutes, negative disables.
	ProviderTokenInterval time.Duration

	// Logger receives the simulator's own events; nil discards them.
	Logger *slog.Logger
	// MaxReceipts is the most device tokens whose receipts are kept (about
	// 1 KiB each); zero is 1 000 000. Pushes past it are still counted.
	MaxReceipts int
	// Now is the simulator's clock (provider-token ages, access-token
	// expiry, fault windows); nil is time.Now. Tests set it to make windows
	// and expiry deterministic.
	Now func() time.Time
}

// Sim is a running simulator.
type Sim struct {
	cfg    Config
	log    *slog.Logger
	ca     *CA
	cert   tls.Certificate
	minter Minter
	rec    *recorder
	faults faults

	apnsKeys  sync.Map // key id -> *apnsKey
	jwtCache  sync.Map // bearer -> *jwtEntry
	jwtCached atomic.Int64

	mu        sync.Mutex
	accounts  map[string]*ServiceAccount // client email -> account
	grants    sync.Map                   // access token -> *grant
	servers   []*http.Server
	serving   sync.WaitGroup
	listeners map[string]net.Listener
	closed    bool
	started   time.Time
}

// New prepares a simulator; Start binds its listeners.
func New(cfg Config) (*Sim, error) {
	if cfg.Seed == "" {
		cfg.Seed = "pushsim"
	}
	if cfg.DefaultFate == 0 {
		cfg.DefaultFate = FateValid
	}
	if _, ok := fateNames[cfg.DefaultFate]; !ok {
		return nil, fmt.Errorf("pushsim: default fate %d: want valid, unregistered or malformed", cfg.DefaultFate)
	}
	if cfg.MaxConcurrentStreams == 0 {
		cfg.MaxConcurrentStreams = 1000
	}
	if cfg.AccessTokenTTL == 0 {
		cfg.AccessTokenTTL = time.Hour
	}
	if cfg.MaxReceipts <= 0 {
		cfg.MaxReceipts = 1_000_000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ProviderTokenInterval == 0 {
		cfg.ProviderTokenInterval = 20 * time.Minute
	}
	s := &Sim{
		cfg:       cfg,
		log:       cfg.Logger,
		ca:        cfg.CA,
		minter:    NewMinter(cfg.Seed),
		rec:       newRecorder(int64(cfg.MaxReceipts)),
		accounts:  make(map[string]*ServiceAccount),
		listeners: make(map[string]net.Listener),
		started:   cfg.Now(),
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.ca == nil {
		ca, err := NewCA()
		if err != nil {
			return nil, err
		}
		s.ca = ca
	}
	if cfg.ServerCert != nil {
		s.cert = *cfg.ServerCert
	} else {
		c, err := s.ca.ServerCert()
		if err != nil {
			return nil, err
		}
		s.cert = c
	}
	return s, nil
}

// Start binds the four listeners and serves them until Close.
func (s *Sim) Start() error {
	addr := func(a string) string {
		if a == "" {
			return "127.0.0.1:0"
		}
		return a
	}
	specs := []struct {
		name    string
		addr    string
		handler http.Handler
		tls     bool
		h1      bool
	}{
		{ListenerAPNsProduction, addr(s.cfg.APNsProductionAddr), s.apnsHandler(Production), true, false},
		{ListenerAPNsDevelopment, addr(s.cfg.APNsDevelopmentAddr), s.apnsHandler(Development), true, false},
		{ListenerFCM, addr(s.cfg.FCMAddr), s.fcmHandler(), true, true},
		{"control", addr(s.cfg.ControlAddr), s.controlHandler(), false, true},
	}
	for _, sp := range specs {
		ln, err := net.Listen("tcp", sp.addr)
		if err != nil {
			s.Close()
			return fmt.Errorf("pushsim: listen %s on %s: %w", sp.name, sp.addr, err)
		}
		srv := &http.Server{
			Handler:           sp.handler,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       5 * time.Minute,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
			ConnContext: func(ctx context.Context, c net.Conn) context.Context {
				return context.WithValue(ctx, connKey{}, c)
			},
		}
		name := sp.name
		srv.ConnState = func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				s.rec.connected(name)
			}
		}
		if sp.tls {
			var protos http.Protocols
			protos.SetHTTP2(true)
			protos.SetHTTP1(sp.h1)
			srv.Protocols = &protos
			srv.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: s.cfg.MaxConcurrentStreams}
			srv.TLSConfig = &tls.Config{
				Certificates: []tls.Certificate{s.cert},
				MinVersion:   tls.VersionTLS12,
			}
			if sp.name != ListenerFCM {
				// APNs certificate authentication is mutual TLS; token
				// authentication clients present no certificate.
				srv.TLSConfig.ClientAuth = tls.VerifyClientCertIfGiven
				srv.TLSConfig.ClientCAs = s.ca.Pool()
			}
		}
		s.mu.Lock()
		s.servers = append(s.servers, srv)
		s.listeners[sp.name] = ln
		s.mu.Unlock()
		s.serving.Add(1)
		go func(srv *http.Server, ln net.Listener, useTLS bool) {
			defer s.serving.Done()
			var err error
			if useTLS {
				err = srv.ServeTLS(ln, "", "")
			} else {
				err = srv.Serve(ln)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("pushsim: serve", "err", err)
			}
		}(srv, ln, sp.tls)
	}
	return nil
}

// Close stops every listener and drops open connections.
func (s *Sim) Close() error {
	s.mu.Lock()
	servers := s.servers
	s.servers = nil
	s.closed = true
	s.mu.Unlock()
	var errs []error
	for _, srv := range servers {
		errs = append(errs, srv.Close())
	}
	s.serving.Wait()
	return errors.Join(errs...)
}

type connKey struct{}

func (s *Sim) url(name, scheme string) string {
	s.mu.Lock()
	ln := s.listeners[name]
	s.mu.Unlock()
	if ln == nil {
		return ""
	}
	return scheme + "://" + ln.Addr().String()
}

// APNsURL is the base URL of the gateway for env, as apns2.Client.Host takes it.
func (s *Sim) APNsURL(env Env) string {
	if env == Development {
		return s.url(ListenerAPNsDevelopment, "https")
	}
	return s.url(ListenerAPNsProduction, "https")
}

// FCMURL is the FCM listener's base URL; the SDK's endpoint is FCMURL()+"/v1".
func (s *Sim) FCMURL() string { return s.url(ListenerFCM, "https") }

// FCMEndpoint is the endpoint to give the Firebase SDK (option.WithEndpoint).
func (s *Sim) FCMEndpoint() string { return s.FCMURL() + "/v1" }

// TokenURL is the OAuth2 token endpoint to put in a service account's token_uri.
func (s *Sim) TokenURL() string { return s.FCMURL() + "/token" }

// ControlURL is the base URL of the control API (plain HTTP).
func (s *Sim) ControlURL() string { return s.url("control", "http") }

// CA is the simulator's certificate authority; clients trust CA().Pool().
func (s *Sim) CA() *CA { return s.ca }

// Minter mints tokens with this simulator's seed.
func (s *Sim) Minter() Minter { return s.minter }

// Counts reports how many requests each listener answered, by status and reason.
func (s *Sim) Counts() []Count { return s.rec.snapshot() }

// Total sums the counts that match listener (empty: any), status (0: any)
// and reason (empty: any).
func (s *Sim) Total(listener string, status int, reason string) int64 {
	var n int64
	for _, c := range s.rec.snapshot() {
		if (listener == "" || c.Listener == listener) && (status == 0 || c.Status == status) && (reason == "" || c.Reason == reason) {
			n += c.Count
		}
	}
	return n
}

// Connections reports how many connections each listener has accepted: a
// client that meets GOAWAY or a dropped connection dials a new one.
func (s *Sim) Connections() map[string]int64 { return s.rec.connections() }

// InFlight reports how many requests each push listener (APNs production,
// APNs development, FCM; not the token endpoint) is handling now.
func (s *Sim) InFlight() map[string]int64 { return s.rec.inFlight(false) }

// InFlightPeak reports the most requests each push listener has handled at
// once since it started or was last reset: with latency injected by a
// fault, it shows whether a client bounds how many pushes it keeps in
// flight. A request counts from when its handler starts until its answer
// is written, injected latency included.
func (s *Sim) InFlightPeak() map[string]int64 { return s.rec.inFlight(true) }

// ReceiptsDropped is how many pushes to new tokens found the receipt store
// full (Config.MaxReceipts); they were counted but not kept.
func (s *Sim) ReceiptsDropped() int64 { return s.rec.dropped.Load() }

// Receipt reports what token accepted.
func (s *Sim) Receipt(token string) (Receipt, bool) { return s.rec.receipt(token) }

// Receipts reports every token that accepted a push, oldest first.
func (s *Sim) Receipts() []Receipt { return s.rec.receipts() }

// Reset forgets counts, receipts and faults, and starts the in-flight peaks
// again from the requests being handled now: zero, once every push a test
// made has been answered.
func (s *Sim) Reset() {
	s.rec.reset()
	s.faults.clear()
}

// AddFault starts a fault injection rule and returns it with its id.
func (s *Sim) AddFault(f Fault) (Fault, error) { return s.faults.add(f, s.cfg.Now()) }

// RemoveFault ends the rule with id.
func (s *Sim) RemoveFault(id string) bool { return s.faults.remove(id) }

// ClearFaults ends every rule.
func (s *Sim) ClearFaults() { s.faults.clear() }

// Faults lists the rules with their hit counts.
func (s *Sim) Faults() []Fault { return s.faults.list() }

// APNsKeys lists the key ids the simulator accepts provider tokens for.
func (s *Sim) APNsKeys() []string {
	var ids []string
	s.apnsKeys.Range(func(k, _ any) bool {
		ids = append(ids, k.(string))
		return true
	})
	return ids
}

// ServiceAccounts lists the accounts the token endpoint knows.
func (s *Sim) ServiceAccounts() []*ServiceAccount {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*ServiceAccount, 0, len(s.accounts))
	for _, a := range s.accounts {
		out = append(out, a)
	}
	return out
}

// apnsKey is a signing key the APNs listeners accept provider tokens from.
type apnsKey struct {
	id     string
	teamID string
	pub    *ecdsa.PublicKey
	// iat is the issue time of the newest provider token seen for the key,
	// for Apple's limit on how often a new token may replace the old one.
	iat atomic.Int64
}

// AddAPNsKey makes the APNs listeners accept provider tokens signed by pub
// with key id keyID for teamID (DefaultTeamID when empty).
func (s *Sim) AddAPNsKey(keyID, teamID string, pub *ecdsa.PublicKey) error {
	if keyID == "" || pub == nil {
		return errors.New("pushsim: add APNs key: key id and public key are required")
	}
	if teamID == "" {
		teamID = DefaultTeamID
	}
	s.apnsKeys.Store(keyID, &apnsKey{id: keyID, teamID: teamID, pub: pub})
	return nil
}

// RemoveAPNsKey stops accepting provider tokens signed with keyID, as
// Apple does once a key is revoked in the developer account.
func (s *Sim) RemoveAPNsKey(keyID string) bool {
	_, ok := s.apnsKeys.LoadAndDelete(keyID)
	return ok
}

// NewAPNsKey makes a signing key like the .p8 files Apple hands out and
// registers it.
func (s *Sim) NewAPNsKey(keyID, teamID string) (*APNsKey, error) {
	k, err := GenerateAPNsKey(keyID, teamID)
	if err != nil {
		return nil, err
	}
	if err := s.AddAPNsKey(k.KeyID, k.TeamID, &k.Key.PublicKey); err != nil {
		return nil, err
	}
	return k, nil
}

// AddServiceAccount makes the token endpoint accept assertions signed by
// the account's key.
func (s *Sim) AddServiceAccount(sa *ServiceAccount) error {
	if sa == nil || sa.ClientEmail == "" || sa.ProjectID == "" || sa.public() == nil {
		return errors.New("pushsim: add service account: client email, project id and key are required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts[sa.ClientEmail] = sa
	return nil
}

// NewServiceAccount makes a service account for project and registers it.
// Its JSON (ServiceAccount.JSON) names this simulator's token endpoint.
func (s *Sim) NewServiceAccount(project string) (*ServiceAccount, error) {
	sa, err := GenerateServiceAccount(project)
	if err != nil {
		return nil, err
	}
	if err := s.AddServiceAccount(sa); err != nil {
		return nil, err
	}
	return sa, nil
}

func (s *Sim) account(email string) *ServiceAccount {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accounts[email]
}
