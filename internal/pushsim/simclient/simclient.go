// Package simclient points the real provider clients, sideshow/apns2 and
// the Firebase Admin SDK, at a pushsim simulator: the gateway or endpoint,
// the CA to trust, and the OAuth2 service-account flow through pushsim's
// token endpoint. The demo, the load generator and tests share it.
package simclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"time"

	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/messaging"
	"github.com/sideshow/apns2"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"google.golang.org/api/option"

	"github.com/pushd/pushd/internal/pushsim"
)

// APNs makes c talk to sim's gateway for env and trust sim's CA, keeping
// the client certificate c was made with, if any.
func APNs(c *apns2.Client, sim *pushsim.Sim, env pushsim.Env) *apns2.Client {
	c.Host = sim.APNsURL(env)
	c.HTTPClient.Transport = APNsTransport(sim.CA().Pool(), c.Certificate)
	return c
}

// APNsTransport is an HTTP/2 transport such as apns2 makes for its clients
// (the same dial timeout, keep-alive and pings on an idle connection), but
// net/http's own rather than x/net's deprecated http2.Transport. It trusts
// roots and presents cert, unless cert is empty (token authentication).
func APNsTransport(roots *x509.CertPool, cert tls.Certificate) *http.Transport {
	cfg := &tls.Config{RootCAs: roots}
	if len(cert.Certificate) > 0 {
		cfg.Certificates = []tls.Certificate{cert}
	}
	var protocols http.Protocols
	protocols.SetHTTP2(true) // APNs speaks HTTP/2 only
	d := &net.Dialer{Timeout: apns2.TLSDialTimeout, KeepAlive: apns2.TCPKeepAlive}
	return &http.Transport{
		DialContext:         d.DialContext,
		TLSClientConfig:     cfg,
		TLSHandshakeTimeout: apns2.TLSDialTimeout,
		Protocols:           &protocols,
		HTTP2:               &http.HTTP2Config{SendPingTimeout: apns2.ReadIdleTimeout},
		// One dial at a time: until the first connection is up, net/http
		// does not know it will be HTTP/2 and would dial one for every
		// request waiting. For HTTP/2 this limits only dials in progress,
		// not connections.
		MaxConnsPerHost: 1,
	}
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
	creds, err := google.CredentialsFromJSONWithType(tctx, saJSON, google.ServiceAccount, pushsim.ScopeFirebaseMessaging)
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
