// Package pushsimtest starts pushsim simulators for tests and points the real
// provider clients at them.
package pushsimtest

import (
	"crypto/tls"
	"testing"

	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/token"
	"golang.org/x/net/http2"

	"github.com/pushd/pushd/internal/pushsim"
)

// Start runs a simulator on random loopback ports for the length of the test.
func Start(tb testing.TB, cfg pushsim.Config) *pushsim.Sim {
	tb.Helper()
	sim, err := pushsim.New(cfg)
	if err != nil {
		tb.Fatalf("pushsim: %v", err)
	}
	if err := sim.Start(); err != nil {
		tb.Fatalf("pushsim: %v", err)
	}
	tb.Cleanup(func() { sim.Close() })
	return sim
}

// TrustSim makes an apns2 client trust the simulator's CA and talk to the
// gateway for env. It keeps any client certificate already configured.
func TrustSim(c *apns2.Client, sim *pushsim.Sim, env pushsim.Env) *apns2.Client {
	c.Host = sim.APNsURL(env)
	tr := c.HTTPClient.Transport.(*http2.Transport)
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{}
	}
	tr.TLSClientConfig.RootCAs = sim.CA().Pool()
	return c
}

// APNsTokenClient registers a new signing key with the simulator and returns
// a real apns2 token-authentication client for env, and its key.
func APNsTokenClient(tb testing.TB, sim *pushsim.Sim, env pushsim.Env) (*apns2.Client, *pushsim.APNsKey) {
	tb.Helper()
	k, err := sim.NewAPNsKey("", "")
	if err != nil {
		tb.Fatal(err)
	}
	tok := &token.Token{AuthKey: k.Key, KeyID: k.KeyID, TeamID: k.TeamID}
	return TrustSim(apns2.NewTokenClient(tok), sim, env), k
}

// APNsCertClient returns a real apns2 certificate-authentication client for env.
func APNsCertClient(sim *pushsim.Sim, cert tls.Certificate, env pushsim.Env) *apns2.Client {
	return TrustSim(apns2.NewClient(cert), sim, env)
}
