// Package simclient points the real provider clients, sideshow/apns2 and
// the Firebase Admin SDK, at a pushsim simulator: the gateway or endpoint,
// the CA to trust, and the OAuth2 service-account flow through pushsim's
// token endpoint. The demo, the load generator and tests share it.
package simclient

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"time"

	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/messaging"
	"github.com/sideshow/apns2"
	"golang.org/x/net/http2"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"google.golang.org/api/option"

	"github.com/pushd/pushd/internal/pushsim"
)

// APNs makes c talk to sim's gateway for env and trust sim's CA, keeping
// any client certificate already configured.
func APNs(c *apns2.Client, sim *pushsim.Sim, env pushsim.Env) *apns2.Client {
	c.Host = sim.APNsURL(env)
	tr := c.HTTPClient.Transport.(*http2.Transport)
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{}
	}
	tr.TLSClientConfig.RootCAs = sim.CA().Pool()
	return c
}

// FCM is a Firebase messaging client wired to a simulator.
type FCM struct {
	Messaging *messaging.Client
	// Tokens is the OAuth2 token source the client authenticates with.
	Tokens oauth2.TokenSource
	// HTTP trusts the simulator's CA and carries no credentials, for raw
	// requests beside the SDK's.
	HTTP *http.Client
}

// NewFCM builds a messaging client for project that fetches its access
// tokens with the service-account key file saJSON (whose token_uri names
// sim's token endpoint) and sends to sim's FCM endpoint.
func NewFCM(ctx context.Context, sim *pushsim.Sim, saJSON []byte, project string) (*FCM, error) {
	hc := &http.Client{
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: sim.CA().Pool()},
			ForceAttemptHTTP2: true,
		},
		Timeout: time.Minute,
	}
	// x/oauth2 fetches tokens with the client found in this context.
	tctx := context.WithValue(ctx, oauth2.HTTPClient, hc)
	creds, err := google.CredentialsFromJSON(tctx, saJSON, pushsim.ScopeFirebaseMessaging)
	if err != nil {
		return nil, fmt.Errorf("simclient: service account: %w", err)
	}
	app, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: project},
		option.WithHTTPClient(oauth2.NewClient(tctx, creds.TokenSource)),
		option.WithEndpoint(sim.FCMEndpoint()))
	if err != nil {
		return nil, fmt.Errorf("simclient: firebase app: %w", err)
	}
	m, err := app.Messaging(ctx)
	if err != nil {
		return nil, fmt.Errorf("simclient: firebase messaging: %w", err)
	}
	return &FCM{Messaging: m, Tokens: creds.TokenSource, HTTP: hc}, nil
}
