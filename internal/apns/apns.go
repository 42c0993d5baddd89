// Package apns sends pushes to Apple through github.com/sideshow/apns2:
// one client per app and environment, credentials loaded once, and every
// answer classified into pushd's outcomes (DESIGN.md, "Outcomes").
//
// Token authentication (.p8 keys) and certificate authentication (.p12 or
// PEM client certificates, mutual TLS) are supported. A signing key's
// provider token is shared by every app and environment that uses the key
// and, through a TokenStore, by every process of the deployment, because
// Apple refuses a new token for a key within 20 minutes of the last.
package apns

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sideshow/apns2"

	"github.com/pushd/pushd/internal/outcome"
	"github.com/pushd/pushd/internal/pemfile"
	"github.com/pushd/pushd/internal/providertoken"
	"github.com/pushd/pushd/internal/retryafter"
)

// APNs environments, as installations name them.
const (
	Production  = "production"
	Development = "development"
)

// Config configures a Sender.
type Config struct {
	Apps []AppConfig
	// MaxConnsPerGateway is the most HTTP/2 connections one app opens to
	// one gateway; zero is 4. A connection carries as many pushes at once
	// as the server allows (MAX_CONCURRENT_STREAMS, 1000 at Apple); another
	// is opened only when every one is full.
	MaxConnsPerGateway int
	// IdleTimeout closes a connection nothing was sent on for that long;
	// zero is 10 minutes.
	IdleTimeout time.Duration
	// Tokens keeps the provider tokens of .p8 keys for the whole
	// deployment: every process that pushes with a key, and a process
	// restarted, must present the same token (TokenStore). nil keeps them
	// in this Sender's memory alone, which is right only for a lone
	// process that is never restarted within 20 minutes.
	Tokens TokenStore
	// Logger receives the credential errors (auth_error), at most one line
	// per app and minute, and the provider token store's outages; nil
	// discards them.
	Logger *slog.Logger
	// Now is the clock: of that once-a-minute limit, of certificate
	// validity at start, of Retry-After dates and of provider tokens' issue
	// times and ages; nil is time.Now. Apple judges provider tokens by the
	// real time, so a clock far from it fails token pushes.
	Now func() time.Time
}

// AppConfig is one app's APNs credentials and gateways.
type AppConfig struct {
	AppID string
	// KeyFile is the AuthKey_<KeyID>.p8 file from Apple's developer
	// account; KeyID and TeamID identify it to Apple.
	KeyFile string
	KeyID   string
	TeamID  string
	// Certificate authentication, instead of KeyFile: Certificate is one
	// universal certificate ("Apple Push Services") for both environments;
	// ProductionCertificate and DevelopmentCertificate are one per
	// environment, either or both (an environment without one has no
	// credentials). An app sets Certificate or the per-environment ones,
	// not both. Each certificate's topics must include Topic.
	Certificate            Certificate
	ProductionCertificate  Certificate
	DevelopmentCertificate Certificate
	// Topic is the app's bundle id, used when a request names none. With
	// certificates, empty is the certificates' bundle id.
	Topic string
	// ProductionURL and DevelopmentURL are the gateways; empty is Apple's
	// (apns2.HostProduction, apns2.HostDevelopment).
	ProductionURL  string
	DevelopmentURL string
	// CAFile is a PEM bundle to trust instead of the system roots (for
	// pushsim); empty trusts the system roots.
	CAFile string
}

// Request is one push.
type Request struct {
	// Token is the device token, hex.
	Token string
	// Env is Production or Development; empty is Production.
	Env string
	// Topic is the apns-topic; empty is the app's Topic.
	Topic string
	// PushType is the apns-push-type; empty is "alert".
	PushType string
	// Priority is the apns-priority (10, 5 or 1); zero sends none, which
	// Apple takes as 10.
	Priority int
	// Expiration is when Apple may stop trying to deliver; zero sends none.
	Expiration time.Time
	// CollapseID makes a later push replace this one on the device.
	CollapseID string
	// ApnsID is the push's UUID; empty lets Apple assign one.
	ApnsID string
	// Payload is the JSON object Apple delivers.
	Payload []byte
}

// Result is what became of one push.
type Result struct {
	Outcome outcome.Outcome
	// Env is the environment whose gateway answered.
	Env string
	// Status and Reason are Apple's answer (Reason is empty on 200), or
	// Apple's reason for a push refused before sending (PayloadEmpty).
	// A BadDeviceToken may mean the token belongs to the other environment.
	Status int
	Reason string
	// RetryAfter is Apple's Retry-After, when it sent one.
	RetryAfter time.Duration
	// TokenInvalidAt is when Apple says the token stopped being valid
	// (410 only).
	TokenInvalidAt time.Time
	// ApnsID is the push's id, as Apple echoed it.
	ApnsID string
	// Err is the transport error, or why the push was not sent.
	Err error
}

// Sender sends pushes for the configured apps. It is safe for concurrent use.
type Sender struct {
	apps map[string]*app
	now  func() time.Time
	auth *authLog
}

type app struct {
	topic string
	// gateways are indexed by environment: production, development. A nil
	// gateway has no credentials (certificate apps may hold one
	// environment only).
	gateways [2]*gateway
}

// gateway is one app's client for one environment. Clients are never
// shared between environments: flipping a shared client's Host per push
// would race.
type gateway struct {
	env    string
	client *apns2.Client
	// pool is client's transport: the gateway's connections.
	pool *transport
	// signer is the client's provider token, which pool puts on each
	// push; nil for certificate clients (issue 4).
	signer *signer
}

const (
	envProduction = iota
	envDevelopment
)

// New loads every app's credentials and builds its clients. It connects to
// nothing: apns2 dials on the first push, and the first push of each
// signing key takes its provider token from cfg.Tokens (or signs one).
func New(cfg Config) (*Sender, error) {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	store := cfg.Tokens
	if store == nil {
		// This Sender's tokens, shared with nobody.
		store = new(providertoken.Memory)
	}
	s := &Sender{apps: make(map[string]*app, len(cfg.Apps)), now: now, auth: newAuthLog(log, now)}
	signers := make(map[string]*signer) // key id -> signer
	roots := make(map[string]*x509.CertPool)
	for _, ac := range cfg.Apps {
		if err := checkApp(ac); err != nil {
			return nil, err
		}
		if _, dup := s.apps[ac.AppID]; dup {
			return nil, fmt.Errorf("apns: app %q is configured twice", ac.AppID)
		}
		pool, err := caPool(roots, ac.CAFile)
		if err != nil {
			return nil, fmt.Errorf("apns: app %q: %w", ac.AppID, err)
		}
		hosts := [2]string{orDefault(ac.ProductionURL, apns2.HostProduction), orDefault(ac.DevelopmentURL, apns2.HostDevelopment)}
		// Each environment's gateway authenticates with the app's
		// certificate for it (mutual TLS) or with its provider token.
		var certs [2]*clientCert
		var sg *signer
		a := &app{topic: ac.Topic}
		if ac.KeyFile == "" {
			if certs, a.topic, err = appCerts(ac, s.now()); err != nil {
				return nil, fmt.Errorf("apns: app %q: %w", ac.AppID, err)
			}
		} else if sg, err = signerFor(signers, ac, store, now, log); err != nil {
			return nil, err
		}
		for i, env := range [2]string{Production, Development} {
			var cert *tls.Certificate
			switch {
			case certs[i] != nil:
				cert = &certs[i].tls
			case sg == nil:
				continue // a certificate app without this environment
			}
			t := newTransport(pool, cert, sg, cfg.MaxConnsPerGateway, cfg.IdleTimeout)
			c := &apns2.Client{Host: hosts[i], HTTPClient: &http.Client{Transport: t}}
			a.gateways[i] = &gateway{env: env, client: c, pool: t, signer: sg}
		}
		s.apps[ac.AppID] = a
	}
	return s, nil
}

func checkApp(ac AppConfig) error {
	if ac.AppID == "" {
		return errors.New("apns: an app has no app id")
	}
	certs := ac.Certificate.set() || ac.ProductionCertificate.set() || ac.DevelopmentCertificate.set()
	var missing string
	switch {
	case ac.KeyFile != "" && certs:
		missing = "has both a key file (.p8) and certificates: use one kind of credentials"
	case ac.Certificate.set() && (ac.ProductionCertificate.set() || ac.DevelopmentCertificate.set()):
		missing = "has a universal certificate and per-environment certificates: use one or the other"
	case certs:
		for _, c := range [3]Certificate{ac.Certificate, ac.ProductionCertificate, ac.DevelopmentCertificate} {
			if c.set() && c.File == "" {
				missing = "a certificate has a password but no file"
			}
		}
	case ac.KeyFile == "":
		missing = "key file (.p8) or certificate is required"
	case ac.KeyID == "":
		missing = "key id is required"
	case ac.TeamID == "":
		missing = "team id is required"
	case ac.Topic == "":
		// Token authentication has no certificate to take the topic from.
		missing = "topic is required (the app's bundle id)"
	}
	if missing != "" {
		return fmt.Errorf("apns: app %q: %s", ac.AppID, missing)
	}
	return nil
}

// signerFor returns the signer of ac's key, loading the key the first time
// it is named. Two apps naming one key id must name the same key. No token
// is signed here: the first push takes the deployment's from store.
func signerFor(signers map[string]*signer, ac AppConfig, store TokenStore, now func() time.Time, log *slog.Logger) (*signer, error) {
	if sg, ok := signers[ac.KeyID]; ok {
		if sg.teamID != ac.TeamID {
			return nil, fmt.Errorf("apns: app %q: key %s belongs to team %s in an earlier app, not %s", ac.AppID, ac.KeyID, sg.teamID, ac.TeamID)
		}
		if ac.KeyFile != sg.file {
			key, err := loadP8(ac.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("apns: app %q: %w", ac.AppID, err)
			}
			if !key.PublicKey.Equal(&sg.key.PublicKey) {
				return nil, fmt.Errorf("apns: app %q: key %s in %s differs from key %s in %s", ac.AppID, ac.KeyID, ac.KeyFile, ac.KeyID, sg.file)
			}
		}
		return sg, nil
	}
	key, err := loadP8(ac.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("apns: app %q: %w", ac.AppID, err)
	}
	sg := newSigner(key, ac.KeyID, ac.TeamID, ac.KeyFile, store, now, log)
	signers[ac.KeyID] = sg
	return sg, nil
}

// caPool reads a PEM bundle once per file; "" is the system roots (nil).
func caPool(pools map[string]*x509.CertPool, file string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil
	}
	if p, ok := pools[file]; ok {
		return p, nil
	}
	p, err := pemfile.CertPool(file)
	if err != nil {
		return nil, err
	}
	pools[file] = p
	return p, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Topic is appID's default apns-topic: the configured topic, else the
// bundle id of the app's certificate; empty for an app without APNs
// credentials.
func (s *Sender) Topic(appID string) string {
	if a := s.apps[appID]; a != nil {
		return a.topic
	}
	return ""
}

// Send pushes r for appID and classifies Apple's answer. It always returns
// an outcome, for the caller to record. An app without APNs credentials, or
// an environment other than production and development, is NoCredentials.
//
// An ExpiredProviderToken answer gets one retry with a new provider token
// (unless the token is too young to be the problem: then the clocks
// disagree and the push is Retrying). A TooManyProviderTokenUpdates answer
// gets one retry with the deployment's stored token if it differs from the
// refused one, or with this process's previous token, put back in the
// store, when the stored one is a newer token Apple refuses (the store was
// lost and another process signed anew); it is Retrying otherwise. A push the caller cancels is
// Retrying too, since nobody knows whether Apple took it, with Err
// wrapping context.Canceled.
func (s *Sender) Send(ctx context.Context, appID string, r Request) Result {
	a := s.apps[appID]
	if a == nil {
		return Result{Outcome: outcome.NoCredentials, Err: fmt.Errorf("apns: app %q has no APNs credentials", appID)}
	}
	env, idx := r.Env, envProduction
	switch env {
	case "", Production:
		env = Production
	case Development:
		idx = envDevelopment
	default:
		return Result{Outcome: outcome.NoCredentials, Env: env, Err: fmt.Errorf("apns: app %q: unknown environment %q (want production or development)", appID, env)}
	}
	g := a.gateways[idx]
	if g == nil {
		return Result{Outcome: outcome.NoCredentials, Env: env, Err: fmt.Errorf("apns: app %q has no credentials for %s", appID, env)}
	}
	if len(r.Payload) == 0 {
		// apns2 cannot send an empty body (it marshals the payload as
		// JSON); refuse it as Apple would.
		return Result{Outcome: outcome.Rejected, Env: env, Status: http.StatusBadRequest, Reason: apns2.ReasonPayloadEmpty, Err: errors.New("apns: empty payload")}
	}
	n := &apns2.Notification{
		DeviceToken: r.Token,
		Topic:       r.Topic,
		PushType:    apns2.EPushType(r.PushType),
		Priority:    r.Priority,
		Expiration:  r.Expiration,
		CollapseID:  r.CollapseID,
		ApnsID:      r.ApnsID,
		Payload:     r.Payload,
	}
	if n.Topic == "" {
		n.Topic = a.topic
	}
	res, bearer := s.push(ctx, g, n)
	if g.signer != nil && bearer != "" {
		// Both answers are about the token, not the push: one retry
		// with another token, if there is one, and never more, so that
		// no answer makes a loop.
		var retry bool
		var err error
		switch res.Reason {
		case apns2.ReasonExpiredProviderToken:
			retry, err = g.signer.refresh(ctx, bearer)
		case apns2.ReasonTooManyProviderTokenUpdates:
			retry, err = g.signer.reload(ctx, bearer)
		}
		if err != nil {
			res.Err = err
		} else if retry {
			res, _ = s.push(ctx, g, n)
		}
	}
	if res.Outcome == outcome.AuthError {
		s.auth.note(appID, res)
	}
	return res
}

// push sends n once through g and classifies the answer. It returns the
// authorization header the push carried, for a provider token refresh.
func (s *Sender) push(ctx context.Context, g *gateway, n *apns2.Notification) (Result, string) {
	var x exchange
	// A deadline on the context, not http.Client.Timeout, which runs a
	// goroutine per request beside the HTTP/2 stream's own: with a
	// thousand pushes in flight that was a thousand more stacks.
	ctx, cancel := context.WithTimeout(ctx, pushTimeout)
	defer cancel()
	resp, err := g.client.PushWithContext(context.WithValue(ctx, exchangeKey{}, &x), n)
	res := Result{Env: g.env}
	if err != nil {
		err = withoutToken(withoutURL(g.env, err), n.DeviceToken)
		if x.status != 0 {
			// Apple answered but the body was unreadable: the status
			// still says what happened.
			res.Status = x.status
			res.Outcome = classify(x.status, "")
			res.RetryAfter = retryafter.Parse(x.retryAfter, s.now())
			res.Err = fmt.Errorf("apns: read answer: %w", err)
			return res, x.bearer
		}
		res.Outcome, res.Err = transportOutcome(ctx, err)
		return res, x.bearer
	}
	res.Status = resp.StatusCode
	res.Reason = resp.Reason
	res.ApnsID = resp.ApnsID
	res.Outcome = classify(resp.StatusCode, resp.Reason)
	res.RetryAfter = retryafter.Parse(x.retryAfter, s.now())
	if resp.StatusCode == http.StatusGone && !resp.Timestamp.IsZero() {
		res.TokenInvalidAt = resp.Timestamp.Time
	}
	return res, x.bearer
}

// withoutURL replaces a *url.Error, which net/http returns for every failed
// request, by one that keeps its operation and cause but not its URL: the
// URL ends in /3/device/<device token>, and Result.Err is logged and stored
// as a delivery's reason, where a full device token must never appear. The
// cause stays wrapped, so errors.Is still finds context.Canceled and
// context.DeadlineExceeded.
func withoutURL(env string, err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	return fmt.Errorf("%s to %s gateway: %w", strings.ToLower(ue.Op), env, ue.Err)
}

// withoutToken is withoutURL's safety net: an error whose text still holds
// the device token, from some layer that quotes the request, has it
// replaced by its first eight digits. The error stays wrapped.
func withoutToken(err error, token string) error {
	if len(token) <= 8 || !strings.Contains(err.Error(), token) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), token, token[:8]+"..."), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// transportOutcome classifies a push that got no answer from Apple.
func transportOutcome(ctx context.Context, err error) (outcome.Outcome, error) {
	var me *json.MarshalerError
	switch {
	case errors.As(err, &me):
		// apns2 marshals the payload before sending; it is not JSON.
		return outcome.Rejected, fmt.Errorf("apns: payload is not JSON: %w", err)
	case errors.Is(ctx.Err(), context.Canceled):
		// The caller gave up (shutting down, or the job was cancelled);
		// the push may or may not have reached Apple.
		return outcome.Retrying, fmt.Errorf("apns: push cancelled: %w", err)
	}
	// Connection refused or dropped, GOAWAY with the push unanswered, TLS
	// failures, and deadlines, the caller's or pushTimeout: all are
	// worth trying again.
	return outcome.Retrying, fmt.Errorf("apns: %w", err)
}

// Close closes idle connections. Pushes in flight finish; a later Send
// dials again.
func (s *Sender) Close() {
	for _, a := range s.apps {
		for _, g := range a.gateways {
			if g != nil {
				g.client.CloseIdleConnections()
			}
		}
	}
}
