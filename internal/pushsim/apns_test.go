package pushsim_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v4"
	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/token"
	"golang.org/x/net/http2"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/pushd/pushd/internal/pushsim"
	"github.com/pushd/pushd/internal/pushsim/pushsimtest"
	"github.com/pushd/pushd/internal/pushsim/simclient"
)

const topic = "com.example.chat"

func alert(deviceToken string) *apns2.Notification {
	return &apns2.Notification{
		DeviceToken: deviceToken,
		Topic:       topic,
		Payload:     []byte(`{"aps":{"alert":{"title":"Ada","body":"hello"},"thread-id":"conv-1"},"conv":"conv-1"}`),
	}
}

func push(t *testing.T, c *apns2.Client, n *apns2.Notification) *apns2.Response {
	t.Helper()
	resp, err := c.Push(n)
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	return resp
}

func TestAPNsTokenAuthDelivers(t *testing.T) {
	sim := pushsimtest.Start(t, pushsim.Config{})
	m := sim.Minter()
	for _, env := range []pushsim.Env{pushsim.Production, pushsim.Development} {
		t.Run(env.String(), func(t *testing.T) {
			c, _ := pushsimtest.APNsTokenClient(t, sim, env)
			tok := m.APNs(pushsim.FateValid, env, topic, 1)
			n := alert(tok)
			n.ApnsID = "5b1f4d7e-9c2a-4c8e-8f0a-1d2e3f4a5b6c"
			n.CollapseID = "msg-42"
			n.Priority = apns2.PriorityHigh
			n.Expiration = time.Now().Add(time.Hour)
			resp := push(t, c, n)
			if resp.StatusCode != 200 || resp.ApnsID != n.ApnsID {
				t.Fatalf("got %d %q apns-id %q, want 200 with the request's apns-id", resp.StatusCode, resp.Reason, resp.ApnsID)
			}
			if env == pushsim.Development && resp.ApnsUniqueID == "" {
				t.Error("development gateway returned no apns-unique-id")
			}
			rc, ok := sim.Receipt(tok)
			if !ok || rc.Count != 1 {
				t.Fatalf("receipt = %+v, %v; want one accepted push", rc, ok)
			}
			if rc.Listener != "apns-"+env.String() {
				t.Errorf("listener = %q", rc.Listener)
			}
			if !bytes.Equal(rc.Payload, n.Payload.([]byte)) {
				t.Errorf("payload = %s, want %s", rc.Payload, n.Payload)
			}
			want := map[string]string{"apns-topic": topic, "apns-collapse-id": "msg-42", "apns-priority": "10", "apns-push-type": "alert", "apns-id": n.ApnsID}
			for k, v := range want {
				if rc.Headers[k] != v {
					t.Errorf("header %s = %q, want %q", k, rc.Headers[k], v)
				}
			}
			if _, ok := rc.Headers["authorization"]; ok {
				t.Error("receipt kept the provider token")
			}

			// A second push of the same token shows up as a duplicate.
			push(t, c, alert(tok))
			if rc, _ := sim.Receipt(tok); rc.Count != 2 || rc.Last.Before(rc.First) {
				t.Errorf("after a second push: count %d first %v last %v", rc.Count, rc.First, rc.Last)
			}
		})
	}
	if got := sim.Total("", 200, ""); got != 4 {
		t.Errorf("200 count = %d, want 4", got)
	}
}

func TestAPNsRejectsBadRequests(t *testing.T) {
	sim := pushsimtest.Start(t, pushsim.Config{})
	m := sim.Minter()
	c, _ := pushsimtest.APNsTokenClient(t, sim, pushsim.Production)
	good := m.APNs(pushsim.FateValid, pushsim.Production, topic, 7)
	big := func(n int) []byte {
		return []byte(`{"aps":{"alert":"` + strings.Repeat("x", n-len(`{"aps":{"alert":""}}`)) + `"}}`)
	}
	tests := []struct {
		name   string
		edit   func(n *apns2.Notification)
		status int
		reason string
	}{
		{"token not hex", func(n *apns2.Notification) { n.DeviceToken = strings.Repeat("zz", 32) }, 400, "BadDeviceToken"},
		{"token too short", func(n *apns2.Notification) { n.DeviceToken = "abcd" }, 400, "BadDeviceToken"},
		{"missing topic", func(n *apns2.Notification) { n.Topic = "" }, 400, "MissingTopic"},
		{"unknown push type", func(n *apns2.Notification) { n.PushType = "shout" }, 400, "InvalidPushType"},
		{"priority 7", func(n *apns2.Notification) { n.Priority = 7 }, 400, "BadPriority"},
		{"apns-id not a UUID", func(n *apns2.Notification) { n.ApnsID = "msg-1" }, 400, "BadMessageId"},
		{"collapse id of 65 bytes", func(n *apns2.Notification) { n.CollapseID = strings.Repeat("c", 65) }, 400, "BadCollapseId"},
		{"payload an array", func(n *apns2.Notification) { n.Payload = []byte(`[1,2]`) }, 400, pushsim.ReasonNotJSONObject},
		{"payload a string", func(n *apns2.Notification) { n.Payload = []byte(`"hi"`) }, 400, pushsim.ReasonNotJSONObject},
		{"alert of 4097 bytes", func(n *apns2.Notification) { n.Payload = big(4097) }, 413, "PayloadTooLarge"},
		{"voip of 5121 bytes", func(n *apns2.Notification) { n.PushType = apns2.PushTypeVOIP; n.Payload = big(5121) }, 413, "PayloadTooLarge"},
		{"token of the other environment", func(n *apns2.Notification) {
			n.DeviceToken = m.APNs(pushsim.FateValid, pushsim.Development, topic, 1)
		}, 400, "BadDeviceToken"},
		{"token of another topic", func(n *apns2.Notification) {
			n.DeviceToken = m.APNs(pushsim.FateValid, pushsim.Production, "com.example.other", 1)
		}, 400, "DeviceTokenNotForTopic"},
		{"malformed token", func(n *apns2.Notification) {
			n.DeviceToken = m.APNs(pushsim.FateMalformed, pushsim.Production, topic, 1)
		}, 400, "BadDeviceToken"},
		{"unregistered token", func(n *apns2.Notification) {
			n.DeviceToken = m.APNs(pushsim.FateUnregistered, pushsim.Production, topic, 1)
		}, 410, "Unregistered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := alert(good)
			tt.edit(n)
			before := sim.Total(pushsim.ListenerAPNsProduction, tt.status, tt.reason)
			resp := push(t, c, n)
			if resp.StatusCode != tt.status || resp.Reason != tt.reason {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, resp.Reason, tt.status, tt.reason)
			}
			if tt.status == 410 && resp.Timestamp.Time.IsZero() {
				t.Error("410 without Apple's timestamp")
			}
			if _, ok := sim.Receipt(n.DeviceToken); ok {
				t.Error("a refused push was recorded as received")
			}
			if got := sim.Total(pushsim.ListenerAPNsProduction, tt.status, tt.reason) - before; got != 1 {
				t.Errorf("count of %d %s grew by %d, want 1", tt.status, tt.reason, got)
			}
		})
	}

	// Limits are Apple's, not tighter: these must pass.
	ok := []struct {
		name string
		edit func(n *apns2.Notification)
	}{
		{"alert of 4096 bytes", func(n *apns2.Notification) { n.Payload = big(4096) }},
		{"voip of 5120 bytes", func(n *apns2.Notification) { n.PushType = apns2.PushTypeVOIP; n.Payload = big(5120) }},
		{"collapse id of 64 bytes", func(n *apns2.Notification) { n.CollapseID = strings.Repeat("c", 64) }},
		{"background priority 5", func(n *apns2.Notification) { n.PushType = apns2.PushTypeBackground; n.Priority = 5 }},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			n := alert(good)
			tt.edit(n)
			if resp := push(t, c, n); resp.StatusCode != 200 {
				t.Fatalf("got %d %q, want 200", resp.StatusCode, resp.Reason)
			}
		})
	}
}

// rawAPNs sends what apns2 cannot: an empty body or a bad expiration.
func rawAPNs(t *testing.T, sim *pushsim.Sim, bearer, path string, hdr map[string]string, body string) (int, string, http.Header) {
	t.Helper()
	hc := &http.Client{Transport: simclient.APNsTransport(sim.CA().Pool(), tls.Certificate{})}
	req, err := http.NewRequest(http.MethodPost, sim.APNsURL(pushsim.Production)+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("authorization", "bearer "+bearer)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct{ Reason string }
	json.NewDecoder(resp.Body).Decode(&r)
	return resp.StatusCode, r.Reason, resp.Header
}

func bearerFor(k *pushsim.APNsKey, iat int64) string {
	t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": k.TeamID, "iat": iat})
	t.Header["kid"] = k.KeyID
	s, err := t.SignedString(k.Key)
	if err != nil {
		panic(err)
	}
	return s
}

func TestAPNsRejectsWhatAPNs2CannotSend(t *testing.T) {
	sim := pushsimtest.Start(t, pushsim.Config{})
	k, err := sim.NewAPNsKey("", "")
	if err != nil {
		t.Fatal(err)
	}
	bearer := bearerFor(k, time.Now().Unix())
	tok := sim.Minter().APNs(pushsim.FateValid, pushsim.Production, topic, 1)
	hdr := map[string]string{"apns-topic": topic}
	tests := []struct {
		name   string
		path   string
		hdr    map[string]string
		body   string
		status int
		reason string
	}{
		{"empty body", "/3/device/" + tok, hdr, "", 400, "PayloadEmpty"},
		{"negative expiration", "/3/device/" + tok, map[string]string{"apns-topic": topic, "apns-expiration": "-5"}, `{"aps":{}}`, 400, "BadExpirationDate"},
		{"expiration not a number", "/3/device/" + tok, map[string]string{"apns-topic": topic, "apns-expiration": "soon"}, `{"aps":{}}`, 400, "BadExpirationDate"},
		{"body not JSON", "/3/device/" + tok, hdr, `{"aps":`, 400, pushsim.ReasonNotJSONObject},
		{"wrong path", "/2/device/" + tok, hdr, `{"aps":{}}`, 404, "BadPath"},
		{"expiration 0 is fine", "/3/device/" + tok, map[string]string{"apns-topic": topic, "apns-expiration": "0"}, `{"aps":{}}`, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, reason, _ := rawAPNs(t, sim, bearer, tt.path, tt.hdr, tt.body)
			if status != tt.status || reason != tt.reason {
				t.Fatalf("got %d %q, want %d %q", status, reason, tt.status, tt.reason)
			}
		})
	}
}

func TestAPNsProviderTokens(t *testing.T) {
	sim := pushsimtest.Start(t, pushsim.Config{})
	tok := sim.Minter().APNs(pushsim.FateValid, pushsim.Production, topic, 1)
	k, err := sim.NewAPNsKey("KEYAAAAAAA", "TEAMAAAAAA")
	if err != nil {
		t.Fatal(err)
	}
	stranger, _ := pushsim.GenerateAPNsKey("KEYAAAAAAA", "TEAMAAAAAA") // same ids, other key
	unknown, _ := pushsim.GenerateAPNsKey("KEYUNKNOWN", "TEAMAAAAAA")
	wrongTeam := *k
	wrongTeam.TeamID = "TEAMBBBBBB"
	now := time.Now().Unix()

	// clientWith sends a fixed bearer: apns2 reuses a token it thinks is fresh.
	clientWith := func(bearer string) *apns2.Client {
		tk := &token.Token{AuthKey: k.Key, KeyID: k.KeyID, TeamID: k.TeamID, Bearer: bearer, IssuedAt: now}
		return pushsimtest.TrustSim(apns2.NewTokenClient(tk), sim, pushsim.Production)
	}
	tests := []struct {
		name   string
		client *apns2.Client
		status int
		reason string
	}{
		{"no token", pushsimtest.TrustSim(&apns2.Client{HTTPClient: apns2.NewTokenClient(nil).HTTPClient}, sim, pushsim.Production), 403, "MissingProviderToken"},
		{"unknown key id", clientWith(bearerFor(unknown, now)), 403, "InvalidProviderToken"},
		{"signed by another key", clientWith(bearerFor(stranger, now)), 403, "InvalidProviderToken"},
		{"wrong team", clientWith(bearerFor(&wrongTeam, now)), 403, "InvalidProviderToken"},
		{"not a JWT", clientWith("not.a.jwt"), 403, "InvalidProviderToken"},
		{"issued in the future", clientWith(bearerFor(k, now+3600)), 403, "InvalidProviderToken"},
		{"good", clientWith(bearerFor(k, now-120)), 200, ""},
		{"older than an hour", clientWith(bearerFor(k, now-3601)), 403, "ExpiredProviderToken"},
		// Two minutes after the token above is well inside Apple's 20 minutes.
		{"replaced too soon", clientWith(bearerFor(k, now)), 429, "TooManyProviderTokenUpdates"},
		{"the current token still works", clientWith(bearerFor(k, now-120)), 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := push(t, tt.client, alert(tok))
			if resp.StatusCode != tt.status || resp.Reason != tt.reason {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, resp.Reason, tt.status, tt.reason)
			}
		})
	}

	// A token at least 20 minutes newer replaces the old one.
	sim2 := pushsimtest.Start(t, pushsim.Config{})
	k2, _ := sim2.NewAPNsKey("", "")
	for _, iat := range []int64{now - 3000, now - 1700, now} {
		tk := &token.Token{Bearer: bearerFor(k2, iat), IssuedAt: now}
		c := pushsimtest.TrustSim(apns2.NewTokenClient(tk), sim2, pushsim.Production)
		if resp := push(t, c, alert(sim2.Minter().APNs(pushsim.FateValid, pushsim.Production, topic, 1))); resp.StatusCode != 200 {
			t.Fatalf("token issued at now%+ds: got %d %q, want 200", iat-now, resp.StatusCode, resp.Reason)
		}
	}
}

func issue(t *testing.T, sim *pushsim.Sim, kind pushsim.CertKind) *pushsim.ClientCert {
	t.Helper()
	c, err := sim.CA().IssueAPNsCert(pushsim.ClientCertRequest{Kind: kind, BundleID: topic})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fromP12 loads a certificate the way an operator's .p12 is loaded: from the
// modern AES/PBKDF2 format.
func fromP12(t *testing.T, c *pushsim.ClientCert) tls.Certificate {
	t.Helper()
	p12, err := c.P12("secret", false)
	if err != nil {
		t.Fatal(err)
	}
	key, leaf, chain, err := pkcs12.DecodeChain(p12, "secret")
	if err != nil {
		t.Fatalf("decode modern .p12: %v", err)
	}
	if len(chain) != 1 {
		t.Errorf(".p12 chain has %d certificates, want the CA", len(chain))
	}
	return tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}
}

func fromPEM(t *testing.T, c *pushsim.ClientCert) tls.Certificate {
	t.Helper()
	keyPEM, err := c.KeyPEM("")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(c.CertPEM(), keyPEM)
	if err != nil {
		t.Fatalf("load PEM: %v", err)
	}
	return cert
}

func TestAPNsCertificateAuth(t *testing.T) {
	sim := pushsimtest.Start(t, pushsim.Config{})
	m := sim.Minter()
	certs := map[pushsim.CertKind]*pushsim.ClientCert{
		pushsim.CertDevelopment: issue(t, sim, pushsim.CertDevelopment),
		pushsim.CertProduction:  issue(t, sim, pushsim.CertProduction),
		pushsim.CertUniversal:   issue(t, sim, pushsim.CertUniversal),
	}
	tests := []struct {
		kind   pushsim.CertKind
		env    pushsim.Env
		status int
		reason string
	}{
		{pushsim.CertDevelopment, pushsim.Development, 200, ""},
		{pushsim.CertDevelopment, pushsim.Production, 403, "BadCertificateEnvironment"},
		{pushsim.CertProduction, pushsim.Production, 200, ""},
		{pushsim.CertProduction, pushsim.Development, 403, "BadCertificateEnvironment"},
		{pushsim.CertUniversal, pushsim.Production, 200, ""},
		{pushsim.CertUniversal, pushsim.Development, 200, ""},
	}
	for _, tt := range tests {
		for form, load := range map[string]func(*testing.T, *pushsim.ClientCert) tls.Certificate{"p12": fromP12, "pem": fromPEM} {
			t.Run(string(tt.kind)+"/"+tt.env.String()+"/"+form, func(t *testing.T) {
				c := pushsimtest.APNsCertClient(sim, load(t, certs[tt.kind]), tt.env)
				tok := m.APNs(pushsim.FateValid, tt.env, topic, 3)
				resp := push(t, c, alert(tok))
				if resp.StatusCode != tt.status || resp.Reason != tt.reason {
					t.Fatalf("got %d %q, want %d %q", resp.StatusCode, resp.Reason, tt.status, tt.reason)
				}
			})
		}
	}

	t.Run("topics", func(t *testing.T) {
		uni := pushsimtest.APNsCertClient(sim, fromPEM(t, certs[pushsim.CertUniversal]), pushsim.Production)
		dev := pushsimtest.APNsCertClient(sim, fromPEM(t, certs[pushsim.CertDevelopment]), pushsim.Development)
		voipTok := m.APNs(pushsim.FateValid, pushsim.Production, topic+".voip", 1)
		appTok := m.APNs(pushsim.FateValid, pushsim.Production, topic, 1)

		n := alert(voipTok)
		n.Topic, n.PushType = topic+".voip", apns2.PushTypeVOIP
		if resp := push(t, uni, n); resp.StatusCode != 200 {
			t.Errorf("voip topic on a universal certificate: got %d %q", resp.StatusCode, resp.Reason)
		}
		n = alert(appTok)
		n.Topic = topic + ".voip"
		if resp := push(t, uni, n); resp.StatusCode != 400 || resp.Reason != "DeviceTokenNotForTopic" {
			t.Errorf("app token on the voip topic: got %d %q, want 400 DeviceTokenNotForTopic", resp.StatusCode, resp.Reason)
		}
		n = alert(appTok)
		n.Topic = "com.example.other"
		if resp := push(t, uni, n); resp.StatusCode != 400 || resp.Reason != "TopicDisallowed" {
			t.Errorf("topic outside the certificate: got %d %q, want 400 TopicDisallowed", resp.StatusCode, resp.Reason)
		}
		n = alert(m.APNs(pushsim.FateValid, pushsim.Development, topic, 1))
		n.Topic = topic + ".voip"
		if resp := push(t, dev, n); resp.StatusCode != 400 || resp.Reason != "TopicDisallowed" {
			t.Errorf("voip topic on a development certificate: got %d %q, want 400 TopicDisallowed", resp.StatusCode, resp.Reason)
		}
		// Without apns-topic Apple uses the certificate's only topic.
		n = alert(m.APNs(pushsim.FateValid, pushsim.Development, topic, 2))
		n.Topic = ""
		if resp := push(t, dev, n); resp.StatusCode != 200 {
			t.Errorf("no topic on a single-topic certificate: got %d %q, want 200", resp.StatusCode, resp.Reason)
		}
		// A universal certificate carries several topics, so one must be named.
		n = alert(appTok)
		n.Topic = ""
		if resp := push(t, uni, n); resp.StatusCode != 400 || resp.Reason != "MissingTopic" {
			t.Errorf("no topic on a universal certificate: got %d %q, want 400 MissingTopic", resp.StatusCode, resp.Reason)
		}
	})

	t.Run("handshake refuses", func(t *testing.T) {
		other, err := pushsim.NewCA()
		if err != nil {
			t.Fatal(err)
		}
		foreign, err := other.IssueAPNsCert(pushsim.ClientCertRequest{Kind: pushsim.CertUniversal, BundleID: topic})
		if err != nil {
			t.Fatal(err)
		}
		expired, err := sim.CA().IssueAPNsCert(pushsim.ClientCertRequest{
			Kind: pushsim.CertUniversal, BundleID: topic,
			NotBefore: time.Now().AddDate(-2, 0, 0), NotAfter: time.Now().AddDate(-1, 0, 0),
		})
		if err != nil {
			t.Fatal(err)
		}
		for name, cc := range map[string]*pushsim.ClientCert{"foreign CA": foreign, "expired": expired} {
			before := sim.Total("", 0, "")
			c := pushsimtest.APNsCertClient(sim, cc.TLSCertificate(), pushsim.Production)
			if _, err := c.Push(alert(m.APNs(pushsim.FateValid, pushsim.Production, topic, 1))); err == nil {
				t.Errorf("%s certificate: push succeeded", name)
			}
			if got := sim.Total("", 0, "") - before; got != 0 {
				t.Errorf("%s certificate: %d requests reached the gateway", name, got)
			}
			// Under TLS 1.3 the server judges the client certificate after the
			// client's handshake is done, so its alert arrives on first read.
			conn, err := tls.Dial("tcp", strings.TrimPrefix(sim.APNsURL(pushsim.Production), "https://"),
				&tls.Config{RootCAs: sim.CA().Pool(), NextProtos: []string{"h2"}, Certificates: []tls.Certificate{cc.TLSCertificate()}})
			if err == nil {
				conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, err = conn.Read(make([]byte, 1))
				conn.Close()
			}
			if err == nil || !strings.Contains(err.Error(), "remote error: tls:") {
				t.Errorf("%s certificate: err = %v, want the server's TLS alert", name, err)
			}
		}
	})
}

func TestAPNsCertificateShape(t *testing.T) {
	ca, err := pushsim.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.IssueAPNsCert(pushsim.ClientCertRequest{Kind: pushsim.CertUniversal, BundleID: topic, TeamID: "TEAM123456"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Cert.Subject.CommonName; got != "Apple Push Services: "+topic {
		t.Errorf("CN = %q", got)
	}
	if got := c.Cert.Subject.OrganizationalUnit; len(got) != 1 || got[0] != "TEAM123456" {
		t.Errorf("OU = %q, want the team id", got)
	}
	oids := map[string]bool{}
	for _, e := range c.Cert.Extensions {
		oids[e.Id.String()] = true
	}
	for _, oid := range []string{"1.2.840.113635.100.6.3.1", "1.2.840.113635.100.6.3.2", "1.2.840.113635.100.6.3.6"} {
		if !oids[oid] {
			t.Errorf("universal certificate lacks extension %s", oid)
		}
	}
	if _, err := c.Cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("certificate does not chain to the CA for client auth: %v", err)
	}

	// Legacy .p12 (3DES/RC2) still decodes, and an encrypted PEM key is
	// marked as such.
	legacy, err := c.P12("pw", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := pkcs12.DecodeChain(legacy, "pw"); err != nil {
		t.Errorf("legacy .p12: %v", err)
	}
	if _, _, _, err := pkcs12.DecodeChain(legacy, "wrong"); err == nil {
		t.Error("legacy .p12 opened with the wrong password")
	}
	enc, err := c.KeyPEM("pw")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(enc, []byte("BEGIN ENCRYPTED PRIVATE KEY")) {
		t.Errorf("encrypted key PEM: %s", enc[:40])
	}
}

func TestAPNsFaults(t *testing.T) {
	sim := pushsimtest.Start(t, pushsim.Config{})
	m := sim.Minter()
	c, _ := pushsimtest.APNsTokenClient(t, sim, pushsim.Production)
	tok := m.APNs(pushsim.FateValid, pushsim.Production, topic, 1)
	add := func(f pushsim.Fault) pushsim.Fault {
		t.Helper()
		f, err := sim.AddFault(f)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}

	t.Run("status faults", func(t *testing.T) {
		push(t, c, alert(tok)) // dial before counting connections
		for _, tt := range []struct {
			kind   pushsim.FaultKind
			status int
			reason string
		}{
			{pushsim.FaultTooManyRequests, 429, "TooManyRequests"},
			{pushsim.FaultInternal, 500, "InternalServerError"},
			{pushsim.FaultUnavailable, 503, "ServiceUnavailable"},
			{pushsim.FaultGoAway, 503, "Shutdown"},
		} {
			f := add(pushsim.Fault{Kind: tt.kind, Listener: "apns", RetryAfter: 7})
			conns := sim.Connections()[pushsim.ListenerAPNsProduction]
			resp := push(t, c, alert(tok))
			if resp.StatusCode != tt.status || resp.Reason != tt.reason {
				t.Errorf("%s fault: got %d %q, want %d %q", tt.kind, resp.StatusCode, resp.Reason, tt.status, tt.reason)
			}
			sim.RemoveFault(f.ID)
			// After the fault (a GOAWAY included) the client recovers.
			if resp := push(t, c, alert(tok)); resp.StatusCode != 200 {
				t.Errorf("after %s fault: got %d %q, want 200", tt.kind, resp.StatusCode, resp.Reason)
			}
			// GOAWAY closes the connection: the client had to dial again.
			wantNew := int64(0)
			if tt.kind == pushsim.FaultGoAway {
				wantNew = 1
			}
			if got := sim.Connections()[pushsim.ListenerAPNsProduction] - conns; got != wantNew {
				t.Errorf("%s fault: %d new connections, want %d", tt.kind, got, wantNew)
			}
		}
		// Retry-After reaches the client.
		add(pushsim.Fault{Kind: pushsim.FaultTooManyRequests, RetryAfter: 7, Limit: 1})
		// The client's own provider token: a new one for the same key
		// within 20 minutes would meet TooManyProviderTokenUpdates instead.
		status, _, h := rawAPNs(t, sim, c.Token.GenerateIfExpired(), "/3/device/"+tok, map[string]string{"apns-topic": topic}, `{}`)
		if status != 429 || h.Get("Retry-After") != "7" {
			t.Errorf("429 fault: status %d Retry-After %q, want 429 and 7", status, h.Get("Retry-After"))
		}
	})

	t.Run("reason", func(t *testing.T) {
		for _, tt := range []struct {
			status int
			reason string
		}{{403, "Forbidden"}, {403, "BadCertificate"}, {410, "ExpiredToken"}, {400, "IdleTimeout"}} {
			f := add(pushsim.Fault{Kind: pushsim.FaultReason, Status: tt.status, Reason: tt.reason, Tokens: []string{tok}})
			resp := push(t, c, alert(tok))
			if resp.StatusCode != tt.status || resp.Reason != tt.reason {
				t.Errorf("reason fault: got %d %q, want %d %q", resp.StatusCode, resp.Reason, tt.status, tt.reason)
			}
			if tt.status == 410 && resp.Timestamp.Time.IsZero() {
				t.Error("410 reason fault without Apple's timestamp")
			}
			sim.RemoveFault(f.ID)
		}
		if _, err := sim.AddFault(pushsim.Fault{Kind: pushsim.FaultReason, Status: 200, Reason: "OK"}); err == nil {
			t.Error("a reason fault with status 200 was accepted")
		}
		if _, err := sim.AddFault(pushsim.Fault{Kind: pushsim.FaultReason, Status: 400, Reason: `x"}`}); err == nil {
			t.Error("a reason that would break the JSON answer was accepted")
		}
	})

	t.Run("drop", func(t *testing.T) {
		f := add(pushsim.Fault{Kind: pushsim.FaultDrop, Limit: 1})
		conns := sim.Connections()[pushsim.ListenerAPNsProduction]
		if _, err := c.Push(alert(tok)); err == nil {
			t.Error("push on a dropped connection succeeded")
		}
		if got := sim.Faults()[0].Hits; got != 1 {
			t.Errorf("fault %s hits = %d, want 1", f.ID, got)
		}
		if resp := push(t, c, alert(tok)); resp.StatusCode != 200 {
			t.Errorf("after the drop: got %d %q, want 200", resp.StatusCode, resp.Reason)
		}
		if got := sim.Connections()[pushsim.ListenerAPNsProduction] - conns; got != 1 {
			t.Errorf("after the drop: %d new connections, want 1", got)
		}
		sim.ClearFaults()
	})

	t.Run("limit, tokens and rate", func(t *testing.T) {
		other := m.APNs(pushsim.FateValid, pushsim.Production, topic, 2)
		add(pushsim.Fault{Kind: pushsim.FaultUnavailable, Tokens: []string{other}, Limit: 2})
		var got []int
		for range 3 {
			got = append(got, push(t, c, alert(other)).StatusCode, push(t, c, alert(tok)).StatusCode)
		}
		want := []int{503, 200, 503, 200, 200, 200}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("statuses = %v, want %v (only the listed token, only twice)", got, want)
			}
		}
		sim.ClearFaults()

		add(pushsim.Fault{Kind: pushsim.FaultInternal, Rate: 0.5})
		fails := 0
		for range 400 {
			if push(t, c, alert(tok)).StatusCode == 500 {
				fails++
			}
		}
		// 400 coin flips at 0.5: outside 140..260 has odds below 1e-9.
		if fails < 140 || fails > 260 {
			t.Errorf("rate 0.5 failed %d of 400", fails)
		}
		sim.ClearFaults()
	})

	t.Run("latency", func(t *testing.T) {
		add(pushsim.Fault{Kind: pushsim.FaultLatency, Latency: pushsim.Duration(150 * time.Millisecond), Jitter: pushsim.Duration(10 * time.Millisecond)})
		start := time.Now()
		resp := push(t, c, alert(tok))
		if d := time.Since(start); resp.StatusCode != 200 || d < 150*time.Millisecond {
			t.Errorf("latency fault: %d after %v, want 200 after at least 150ms", resp.StatusCode, d)
		}
		sim.ClearFaults()
	})
}

func TestAPNsFaultWindow(t *testing.T) {
	clk := pushsimtest.NewClock(time.Now())
	sim := pushsimtest.Start(t, pushsim.Config{Now: clk.Now})
	c, _ := pushsimtest.APNsTokenClient(t, sim, pushsim.Production)
	tok := sim.Minter().APNs(pushsim.FateValid, pushsim.Production, topic, 1)
	if _, err := sim.AddFault(pushsim.Fault{Kind: pushsim.FaultUnavailable, Start: clk.Now().Add(time.Minute), Duration: pushsim.Duration(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, step := range []time.Duration{0, time.Minute, 59 * time.Second, time.Second} {
		clk.Advance(step)
		got = append(got, push(t, c, alert(tok)).StatusCode)
	}
	if want := []int{200, 503, 503, 200}; !slices.Equal(got, want) {
		t.Errorf("before, at the start, inside, at the end of the window: %v, want %v", got, want)
	}
}

func TestAPNsDefaultFate(t *testing.T) {
	unknown := strings.Repeat("ab", 50) // well-formed, not minted by the seed
	for _, tt := range []struct {
		fate   pushsim.Fate
		status int
		reason string
	}{
		{pushsim.FateValid, 200, ""},
		{pushsim.FateUnregistered, 410, "Unregistered"},
		{pushsim.FateMalformed, 400, "BadDeviceToken"},
	} {
		sim := pushsimtest.Start(t, pushsim.Config{DefaultFate: tt.fate})
		for _, env := range []pushsim.Env{pushsim.Production, pushsim.Development} {
			c, _ := pushsimtest.APNsTokenClient(t, sim, env)
			if resp := push(t, c, alert(unknown)); resp.StatusCode != tt.status || resp.Reason != tt.reason {
				t.Errorf("default fate %v on %v: got %d %q, want %d %q", tt.fate, env, resp.StatusCode, resp.Reason, tt.status, tt.reason)
			}
		}
	}
}

func TestAPNsKeyRevocation(t *testing.T) {
	sim := pushsimtest.Start(t, pushsim.Config{})
	c, k := pushsimtest.APNsTokenClient(t, sim, pushsim.Production)
	tok := sim.Minter().APNs(pushsim.FateValid, pushsim.Production, topic, 1)
	if resp := push(t, c, alert(tok)); resp.StatusCode != 200 {
		t.Fatalf("before revocation: got %d %q", resp.StatusCode, resp.Reason)
	}
	// Replacing the key under the same id invalidates tokens of the old one.
	if _, err := sim.NewAPNsKey(k.KeyID, k.TeamID); err != nil {
		t.Fatal(err)
	}
	if resp := push(t, c, alert(tok)); resp.StatusCode != 403 || resp.Reason != "InvalidProviderToken" {
		t.Errorf("after the key was replaced: got %d %q, want 403 InvalidProviderToken", resp.StatusCode, resp.Reason)
	}
	if !sim.RemoveAPNsKey(k.KeyID) || sim.RemoveAPNsKey(k.KeyID) {
		t.Error("RemoveAPNsKey: want true once, then false")
	}
}

func TestReceiptStoreIsBounded(t *testing.T) {
	sim := pushsimtest.Start(t, pushsim.Config{MaxReceipts: 2})
	c, _ := pushsimtest.APNsTokenClient(t, sim, pushsim.Production)
	m := sim.Minter()
	for i := range 3 {
		if resp := push(t, c, alert(m.APNs(pushsim.FateValid, pushsim.Production, topic, uint64(i)))); resp.StatusCode != 200 {
			t.Fatalf("push %d: %d", i, resp.StatusCode)
		}
	}
	// A token already kept still gets its receipt updated.
	push(t, c, alert(m.APNs(pushsim.FateValid, pushsim.Production, topic, 0)))
	if n := len(sim.Receipts()); n != 2 {
		t.Errorf("%d receipts kept, want 2", n)
	}
	if rc, _ := sim.Receipt(m.APNs(pushsim.FateValid, pushsim.Production, topic, 0)); rc.Count != 2 {
		t.Errorf("kept receipt count = %d, want 2", rc.Count)
	}
	if got := sim.ReceiptsDropped(); got != 1 {
		t.Errorf("dropped = %d, want 1", got)
	}
	if got := sim.Total("", 200, ""); got != 4 {
		t.Errorf("200s counted = %d, want 4: a push past the limit is still counted", got)
	}
	sim.Reset()
	push(t, c, alert(m.APNs(pushsim.FateValid, pushsim.Production, topic, 9)))
	if n := len(sim.Receipts()); n != 1 || sim.ReceiptsDropped() != 0 {
		t.Errorf("after reset: %d receipts, %d dropped; want 1 and 0", n, sim.ReceiptsDropped())
	}
}

func TestAPNsAdvertisesConcurrentStreams(t *testing.T) {
	sim := pushsimtest.Start(t, pushsim.Config{})
	addr := strings.TrimPrefix(sim.APNsURL(pushsim.Production), "https://")
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: sim.CA().Pool(), NextProtos: []string{"h2"}, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN = %q, want h2", p)
	}
	io.WriteString(conn, http2.ClientPreface)
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
			v, ok := sf.Value(http2.SettingMaxConcurrentStreams)
			if !ok || v != 1000 {
				t.Fatalf("MAX_CONCURRENT_STREAMS = %d (sent: %v), want 1000", v, ok)
			}
			return
		}
	}
}

func TestAPNsRefusesHTTP1(t *testing.T) {
	sim := pushsimtest.Start(t, pushsim.Config{})
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: sim.CA().Pool()}, ForceAttemptHTTP2: false, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}}
	resp, err := hc.Post(sim.APNsURL(pushsim.Production)+"/3/device/abc", "application/json", strings.NewReader("{}"))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("HTTP/1.1 request answered %s; APNs speaks only HTTP/2", resp.Status)
	}
}

func TestControlAPI(t *testing.T) {
	sim := pushsimtest.Start(t, pushsim.Config{Seed: "ctl"})
	ctx := context.Background()
	ctl := pushsim.NewControl(sim.ControlURL())
	c, _ := pushsimtest.APNsTokenClient(t, sim, pushsim.Development)

	toks, err := ctl.Mint(ctx, map[string][]string{"provider": {"apns"}, "env": {"development"}, "topic": {topic}, "n": {"2"}})
	if err != nil || len(toks) != 2 {
		t.Fatalf("mint: %v %v", toks, err)
	}
	if toks[0] != pushsim.NewMinter("ctl").APNs(pushsim.FateValid, pushsim.Development, topic, 0) {
		t.Error("the control API mints other tokens than the Minter with the same seed")
	}
	push(t, c, alert(toks[0]))
	push(t, c, alert(toks[0]))
	push(t, c, alert(toks[1]))

	rc, ok, err := ctl.Receipt(ctx, toks[0])
	if err != nil || !ok || rc.Count != 2 || rc.Headers["apns-topic"] != topic {
		t.Fatalf("receipt: %+v %v %v", rc, ok, err)
	}
	var payload map[string]any
	if err := json.Unmarshal(rc.Payload, &payload); err != nil || payload["conv"] != "conv-1" {
		t.Errorf("receipt payload %s: %v", rc.Payload, err)
	}
	brief, err := ctl.ReceiptTimes(ctx)
	if err != nil || len(brief) != 2 || brief[0].Token != toks[0] || brief[0].Count != 2 || brief[0].Last.Before(brief[0].First) ||
		len(brief[0].Payload) != 0 || len(brief[0].Headers) != 0 {
		t.Errorf("brief receipts: %+v %v; want two tokens, counts and times, no payloads", brief, err)
	}
	if _, ok, err := ctl.Receipt(ctx, strings.Repeat("0", 64)); ok || err != nil {
		t.Errorf("receipt of an unseen token: ok %v err %v", ok, err)
	}
	counts, err := ctl.Counts(ctx)
	if err != nil || len(counts) != 1 || counts[0] != (pushsim.Count{Listener: pushsim.ListenerAPNsDevelopment, Status: 200, Count: 3}) {
		t.Errorf("counts = %+v, %v", counts, err)
	}

	f, err := ctl.AddFault(ctx, pushsim.Fault{Kind: pushsim.FaultUnavailable, Listener: "apns-development", Limit: 1})
	if err != nil || f.ID == "" {
		t.Fatalf("add fault: %+v %v", f, err)
	}
	if resp := push(t, c, alert(toks[1])); resp.StatusCode != 503 {
		t.Errorf("with a fault added over the control API: got %d", resp.StatusCode)
	}
	if fs, err := ctl.Faults(ctx); err != nil || len(fs) != 1 || fs[0].Hits != 1 {
		t.Errorf("faults = %+v, %v", fs, err)
	}
	if _, err := ctl.AddFault(ctx, pushsim.Fault{Kind: "teapot"}); err == nil || !strings.Contains(err.Error(), "kind") {
		t.Errorf("bad fault kind: err = %v, want one naming the kind", err)
	}
	if _, err := ctl.AddFault(ctx, pushsim.Fault{Kind: pushsim.FaultInternal, Rate: 2}); err == nil || !strings.Contains(err.Error(), "rate") {
		t.Errorf("bad fault rate: err = %v, want one naming the rate", err)
	}
	if _, err := ctl.Mint(ctx, map[string][]string{"provider": {"apns"}}); err == nil || !strings.Contains(err.Error(), "topic") {
		t.Errorf("mint without topic: err = %v, want one naming topic", err)
	}

	if err := ctl.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if counts, _ := ctl.Counts(ctx); len(counts) != 0 {
		t.Errorf("counts after reset = %+v", counts)
	}
	if rs, _ := ctl.Receipts(ctx); len(rs) != 0 {
		t.Errorf("receipts after reset = %d", len(rs))
	}
	if fs, _ := ctl.Faults(ctx); len(fs) != 0 {
		t.Errorf("faults after reset = %+v", fs)
	}
	// Raw JSON with a duration string, as a test in another language sends it.
	resp, err := http.Post(sim.ControlURL()+"/v1/faults", "application/json", strings.NewReader(`{"kind":"latency","latency":"20ms","duration":"1m"}`))
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("raw fault: %v %v", resp, err)
	}
	resp.Body.Close()
}
