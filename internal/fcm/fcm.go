// Package fcm sends messages through the Firebase Admin SDK's messaging
// client, one per app, and classifies every answer into pushd's outcomes
// (DESIGN.md, "Outcomes").
//
// The SDK retries some failures inside a send before it returns: network
// errors and 503 UNAVAILABLE, up to four times, after 0, 1, 2 and 4 seconds
// or the answer's Retry-After when that is longer, giving up at once when
// Retry-After is over two minutes. A send can therefore take seven seconds
// and more; the caller's context bounds it. Its retries of a dropped
// connection may deliver a message twice, which the notification tag (the
// message id, set by package content) makes harmless: the second replaces
// the first. Other statuses (429, 500) come back at once.
package fcm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/messaging"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"google.golang.org/api/option"

	"github.com/pushd/pushd/internal/outcome"
	"github.com/pushd/pushd/internal/pemfile"
)

// scopeMessaging is the OAuth2 scope FCM's HTTP v1 API asks for.
const scopeMessaging = "https://www.googleapis.com/auth/firebase.messaging"

// defaultConcurrency is SendEach's default bound on messages in flight.
// FCM is a network away, so messages in flight set the pace: against
// pushsim answering after 20 ms, 1 200 messages went at about 2 200/s with
// 50 in flight (what the SDK's SendEach allows), 3 900/s with 100 and
// 7 000/s with 200 (BenchmarkSendEach).
const defaultConcurrency = 200

// Config configures a Sender.
type Config struct {
	Apps []AppConfig
	// Concurrency bounds the messages one SendEach call has in flight;
	// zero is 200.
	Concurrency int
}

// AppConfig is one app's Firebase project and credentials.
type AppConfig struct {
	AppID string
	// CredentialsFile is the service-account key file (JSON) from the
	// Firebase console.
	CredentialsFile string
	// ProjectID is the Firebase project; empty is the file's project_id,
	// and anything else must match it.
	ProjectID string
	// Endpoint is the FCM API base URL; empty is Google's
	// (https://fcm.googleapis.com/v1). The file's token_uri says where
	// access tokens come from.
	Endpoint string
	// CAFile is a PEM bundle to trust instead of the system roots (for
	// pushsim); empty trusts the system roots.
	CAFile string
}

// Result is what became of one message.
type Result struct {
	Outcome outcome.Outcome
	// Code is FCM's errorCode (UNREGISTERED, QUOTA_EXCEEDED...), else the
	// google.rpc status (PERMISSION_DENIED...) or the HTTP status text;
	// for a refused service account, the OAuth2 error (invalid_grant).
	Code string
	// RetryAfter is how long to wait before retrying: the answer's
	// Retry-After, and at least a minute after QUOTA_EXCEEDED.
	RetryAfter time.Duration
	// MessageName is FCM's name for a delivered message.
	MessageName string
	// Err is the SDK's error as it returned it, so that messaging.Is*
	// still work on it; for a refused service account, the OAuth2 error.
	Err error
}

// Sender sends messages for the configured apps. It is safe for concurrent
// use.
type Sender struct {
	apps        map[string]*app
	concurrency int
	now         func() time.Time
}

type app struct {
	client    *messaging.Client
	transport *http.Transport
}

// New checks every app's credentials and builds its messaging client. It
// fetches no access token: the first send does, so a network outage at
// start does not keep pushd down. ctx is used while building the clients;
// token fetches outlive it.
func New(ctx context.Context, cfg Config) (*Sender, error) {
	s := &Sender{
		apps:        make(map[string]*app, len(cfg.Apps)),
		concurrency: cfg.Concurrency,
		now:         time.Now,
	}
	if s.concurrency <= 0 {
		s.concurrency = defaultConcurrency
	}
	for _, ac := range cfg.Apps {
		if ac.AppID == "" {
			return nil, errors.New("fcm: an app has no app id")
		}
		if _, dup := s.apps[ac.AppID]; dup {
			return nil, fmt.Errorf("fcm: app %q is configured twice", ac.AppID)
		}
		a, err := newApp(ctx, ac)
		if err != nil {
			return nil, fmt.Errorf("fcm: app %q: %w", ac.AppID, err)
		}
		s.apps[ac.AppID] = a
	}
	return s, nil
}

func newApp(ctx context.Context, ac AppConfig) (*app, error) {
	if ac.CredentialsFile == "" {
		return nil, errors.New("credentials file (service-account JSON) is required")
	}
	saJSON, sa, err := loadServiceAccount(ac.CredentialsFile)
	if err != nil {
		return nil, fmt.Errorf("credentials %s: %w", ac.CredentialsFile, err)
	}
	project := ac.ProjectID
	if project == "" {
		project = sa.ProjectID
	} else if project != sa.ProjectID {
		return nil, fmt.Errorf("project %q does not match project_id %q in %s", project, sa.ProjectID, ac.CredentialsFile)
	}
	roots, err := pemfile.CertPool(ac.CAFile)
	if err != nil {
		return nil, err
	}
	base := newBaseTransport(roots)

	jwtCfg, err := google.JWTConfigFromJSON(saJSON, scopeMessaging)
	if err != nil {
		// loadServiceAccount has checked what this reads.
		return nil, fmt.Errorf("credentials %s: %w", ac.CredentialsFile, err)
	}
	// x/oauth2 fetches tokens with the client in this context, for as long
	// as the source lives: not only while New runs.
	tctx := context.WithValue(context.WithoutCancel(ctx), oauth2.HTTPClient,
		&http.Client{Transport: base, Timeout: requestTimeout})
	hc := &http.Client{
		Transport: &transport{next: &oauth2.Transport{Source: jwtCfg.TokenSource(tctx), Base: base}},
		Timeout:   requestTimeout,
	}
	opts := []option.ClientOption{option.WithHTTPClient(hc)}
	if ac.Endpoint != "" {
		opts = append(opts, option.WithEndpoint(ac.Endpoint))
	}
	fa, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: project}, opts...)
	if err != nil {
		return nil, fmt.Errorf("firebase app: %w", err)
	}
	mc, err := fa.Messaging(ctx)
	if err != nil {
		return nil, fmt.Errorf("firebase messaging: %w", err)
	}
	return &app{client: mc, transport: base}, nil
}

// Send sends m for appID and classifies the answer. An app without FCM
// credentials is NoCredentials.
func (s *Sender) Send(ctx context.Context, appID string, m *messaging.Message) Result {
	a := s.apps[appID]
	if a == nil {
		return noCredentials(appID)
	}
	return s.send(ctx, a, m)
}

func (s *Sender) send(ctx context.Context, a *app, m *messaging.Message) Result {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	x := &exchange{cancel: cancel}
	name, err := a.client.Send(context.WithValue(ctx, exchangeKey{}, x), m)
	if err == nil {
		return Result{Outcome: outcome.Delivered, MessageName: name}
	}
	return classify(ctx, err, x, s.now())
}

func noCredentials(appID string) Result {
	return Result{Outcome: outcome.NoCredentials, Err: fmt.Errorf("fcm: app %q has no FCM credentials", appID)}
}

// SendEach sends msgs for appID, at most Config.Concurrency at a time, and
// returns their results in order. Each message is its own Send: one bad
// message is Rejected on its own, where the SDK's SendEach refuses the
// whole batch.
func (s *Sender) SendEach(ctx context.Context, appID string, msgs []*messaging.Message) []Result {
	out := make([]Result, len(msgs))
	a := s.apps[appID]
	if a == nil {
		for i := range out {
			out[i] = noCredentials(appID)
		}
		return out
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(s.concurrency, len(msgs)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(msgs) {
					return
				}
				out[i] = s.send(ctx, a, msgs[i])
			}
		})
	}
	wg.Wait()
	return out
}

// Close closes idle connections. Sends in flight finish; a later Send
// dials again.
func (s *Sender) Close() {
	for _, a := range s.apps {
		a.transport.CloseIdleConnections()
	}
}
