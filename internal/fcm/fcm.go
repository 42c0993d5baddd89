// Package fcm sends messages through the Firebase Admin SDK's messaging
// client, one per Firebase project, and classifies every answer into
// pushd's outcomes (DESIGN.md, "Outcomes").
//
// A send is one HTTP attempt. The SDK would retry 503 UNAVAILABLE and
// network errors inside a send, up to four times over seven seconds or,
// honouring Retry-After, minutes; pushd's job retries already wait for
// Retry-After and resend only to the devices still waiting, so the SDK is
// stopped after its first attempt (see exchange) and the job does not wait
// twice. A failed attempt's Result says how long to wait.
package fcm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
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

// Config configures a Sender.
type Config struct {
	Apps []AppConfig
}

// AppConfig is one app's Firebase project and credentials.
type AppConfig struct {
	AppID string
	// CredentialsFile is the service-account key file (JSON) from the
	// Firebase console.
	CredentialsFile string
	// ApplicationDefault uses Google's Application Default Credentials
	// instead of a file: GOOGLE_APPLICATION_CREDENTIALS, gcloud's, or the
	// metadata server of the machine pushd runs on.
	ApplicationDefault bool
	// ProjectID is the Firebase project; empty is the credentials' own
	// project. With a file, anything else must match its project_id.
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
	// Throttled says FCM asked to slow down (429): a retry is owed no
	// matter how often it has come.
	Throttled bool
	// Field is the message field FCM found wrong, for a Rejected
	// INVALID_ARGUMENT (message.android.ttl...): what to fix.
	Field string
	// MessageName is FCM's name for a delivered message.
	MessageName string
	// Err is the SDK's error as it returned it, so that messaging.Is*
	// still work on it; for a refused service account, the OAuth2 error.
	Err error
}

// Sender sends messages for the configured apps. It is safe for concurrent
// use.
type Sender struct {
	apps map[string]*client
}

// client is one Firebase project's messaging client. Apps that name the
// same project with the same credentials share it, and with it one access
// token and one HTTP/2 connection.
type client struct {
	project   string
	messaging *messaging.Client
	transport *http.Transport
}

// clientKey is what makes two apps' clients the same.
type clientKey struct {
	credentials, project, endpoint, caFile string
}

// New checks every app's credentials and builds one messaging client per
// project. It fetches no access token: the first send does, so a network
// outage at start does not keep pushd down. ctx is used while building the
// clients; token fetches outlive it.
func New(ctx context.Context, cfg Config) (*Sender, error) {
	s := &Sender{
		apps: make(map[string]*client, len(cfg.Apps)),
	}
	clients := make(map[clientKey]*client)
	for _, ac := range cfg.Apps {
		if ac.AppID == "" {
			return nil, errors.New("fcm: an app has no app id")
		}
		if _, dup := s.apps[ac.AppID]; dup {
			return nil, fmt.Errorf("fcm: app %q is configured twice", ac.AppID)
		}
		c, err := newClient(ctx, ac, clients)
		if err != nil {
			return nil, fmt.Errorf("fcm: app %q: %w", ac.AppID, err)
		}
		s.apps[ac.AppID] = c
	}
	return s, nil
}

// credentials are an app's checked credentials and their token source.
type credentials struct {
	// id names them among apps: the key file, or ADC.
	id      string
	project string
	src     oauth2.TokenSource
}

// loadCredentials reads ac's credentials now, so that a broken file stops
// pushd at start. Tokens are fetched with the HTTP client in tctx.
func loadCredentials(tctx context.Context, ac AppConfig) (*credentials, error) {
	switch {
	case ac.ApplicationDefault && ac.CredentialsFile != "":
		return nil, errors.New("a credentials file and application default credentials are both set; want one")
	case ac.ApplicationDefault:
		dc, err := google.FindDefaultCredentials(tctx, scopeMessaging)
		if err != nil {
			return nil, fmt.Errorf("application default credentials: %w", err)
		}
		project := ac.ProjectID
		if project == "" {
			project = dc.ProjectID
		}
		if project == "" {
			return nil, errors.New("project id is required: the application default credentials name no project")
		}
		return &credentials{id: "application-default", project: project, src: dc.TokenSource}, nil
	case ac.CredentialsFile == "":
		return nil, errors.New("credentials file (service-account JSON) or application default credentials are required")
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
	jwtCfg, err := google.JWTConfigFromJSON(saJSON, scopeMessaging)
	if err != nil {
		// loadServiceAccount has checked what this reads.
		return nil, fmt.Errorf("credentials %s: %w", ac.CredentialsFile, err)
	}
	id, err := filepath.Abs(ac.CredentialsFile)
	if err != nil {
		id = ac.CredentialsFile
	}
	return &credentials{id: id, project: project, src: jwtCfg.TokenSource(tctx)}, nil
}

// newClient returns the client for ac's project, built unless clients
// already holds it.
func newClient(ctx context.Context, ac AppConfig, clients map[clientKey]*client) (*client, error) {
	roots, err := pemfile.CertPool(ac.CAFile)
	if err != nil {
		return nil, err
	}
	base := newBaseTransport(roots)
	// x/oauth2 fetches tokens with the client in this context, for as long
	// as the source lives: not only while New runs.
	tctx := context.WithValue(context.WithoutCancel(ctx), oauth2.HTTPClient,
		&http.Client{Transport: base, Timeout: requestTimeout})
	cr, err := loadCredentials(tctx, ac)
	if err != nil {
		return nil, err
	}
	key := clientKey{cr.id, cr.project, ac.Endpoint, ac.CAFile}
	if c := clients[key]; c != nil {
		return c, nil
	}
	hc := &http.Client{
		Transport: &transport{tokens: &tokenCache{src: cr.src}, base: base},
		Timeout:   requestTimeout,
	}
	opts := []option.ClientOption{option.WithHTTPClient(hc)}
	if ac.Endpoint != "" {
		opts = append(opts, option.WithEndpoint(ac.Endpoint))
	}
	fa, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: cr.project}, opts...)
	if err != nil {
		return nil, fmt.Errorf("firebase app: %w", err)
	}
	mc, err := fa.Messaging(ctx)
	if err != nil {
		return nil, fmt.Errorf("firebase messaging: %w", err)
	}
	c := &client{project: cr.project, messaging: mc, transport: base}
	clients[key] = c
	return c, nil
}

// Project is the Firebase project appID sends to, and false for an app
// without FCM credentials.
func (s *Sender) Project(appID string) (string, bool) {
	c := s.apps[appID]
	if c == nil {
		return "", false
	}
	return c.project, true
}

// Send sends m for appID and classifies the answer. An app without FCM
// credentials is NoCredentials. It is one request: a job's devices are
// sent to by calling Send from a bounded number of goroutines
// (BatchSender's fan-out), which measured faster than the SDK's SendEach
// (BenchmarkFanOut).
func (s *Sender) Send(ctx context.Context, appID string, m *messaging.Message) Result {
	a := s.apps[appID]
	if a == nil {
		return noCredentials(appID)
	}
	return s.send(ctx, a, m)
}

func (s *Sender) send(ctx context.Context, c *client, m *messaging.Message) Result {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	x := &exchange{cancel: cancel}
	name, err := c.messaging.Send(context.WithValue(ctx, exchangeKey{}, x), m)
	if err == nil {
		return Result{Outcome: outcome.Delivered, MessageName: name}
	}
	return classify(ctx, err, x, time.Now())
}

func noCredentials(appID string) Result {
	return Result{Outcome: outcome.NoCredentials, Err: fmt.Errorf("fcm: app %q has no FCM credentials", appID)}
}

// Close closes idle connections. Sends in flight finish; a later Send
// dials again.
func (s *Sender) Close() {
	for _, c := range s.apps {
		// A shared client's transport is closed once per app: harmless.
		c.transport.CloseIdleConnections()
	}
}
