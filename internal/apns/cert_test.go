package apns_test

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/apns"
	"github.com/pushd/pushd/internal/outcome"
	"github.com/pushd/pushd/internal/pushsim"
	"github.com/pushd/pushd/internal/pushsim/pushsimtest"
	"github.com/pushd/pushd/internal/secret"
	"github.com/pushd/pushd/internal/testenv"
)

// certPassword is what every test certificate is protected with; no error
// may contain it.
const certPassword = "correct-horse-battery"

// certFormat writes an issued certificate to dir as one file kind.
type certFormat struct {
	name  string
	write func(t testing.TB, dir string, c *pushsim.ClientCert) apns.Certificate
}

var certFormats = []certFormat{
	{"p12 modern", func(t testing.TB, dir string, c *pushsim.ClientCert) apns.Certificate {
		return apns.Certificate{File: pushsimtest.WriteFile(t, dir, "modern.p12", p12(t, c, false)), Password: certPassword}
	}},
	{"p12 legacy", func(t testing.TB, dir string, c *pushsim.ClientCert) apns.Certificate {
		return apns.Certificate{File: pushsimtest.WriteFile(t, dir, "legacy.p12", p12(t, c, true)), Password: certPassword}
	}},
	{"pem plain key", func(t testing.TB, dir string, c *pushsim.ClientCert) apns.Certificate {
		return apns.Certificate{File: pushsimtest.WriteFile(t, dir, "plain.pem", certPEM(t, c, ""))}
	}},
	{"pem encrypted key", func(t testing.TB, dir string, c *pushsim.ClientCert) apns.Certificate {
		return apns.Certificate{File: pushsimtest.WriteFile(t, dir, "encrypted.pem", certPEM(t, c, certPassword)), Password: certPassword}
	}},
}

func p12(t testing.TB, c *pushsim.ClientCert, legacy bool) []byte {
	t.Helper()
	b, err := c.P12(certPassword, legacy)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// certPEM is the certificate, its CA and its key (encrypted under password
// when one is given) in one PEM file.
func certPEM(t testing.TB, c *pushsim.ClientCert, password string) []byte {
	t.Helper()
	k, err := c.KeyPEM(password)
	if err != nil {
		t.Fatal(err)
	}
	return append(c.CertPEM(), k...)
}

func issue(t testing.TB, sim *pushsim.Sim, req pushsim.ClientCertRequest) *pushsim.ClientCert {
	t.Helper()
	if req.BundleID == "" {
		req.BundleID = topic
	}
	c, err := sim.CA().IssueAPNsCert(req)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// certApp is an app config pointing at sim, with no credentials yet.
func certApp(t testing.TB, sim *pushsim.Sim) apns.AppConfig {
	t.Helper()
	return apns.AppConfig{
		AppID:          appID,
		Topic:          topic,
		ProductionURL:  sim.APNsURL(pushsim.Production),
		DevelopmentURL: sim.APNsURL(pushsim.Development),
		CAFile:         pushsimtest.WriteFile(t, t.TempDir(), "ca.pem", sim.CA().CertPEM()),
	}
}

// configure puts cert where a certificate of kind belongs.
func configure(a *apns.AppConfig, kind pushsim.CertKind, cert apns.Certificate) {
	switch kind {
	case pushsim.CertDevelopment:
		a.DevelopmentCertificate = cert
	case pushsim.CertProduction:
		a.ProductionCertificate = cert
	default:
		a.Certificate = cert
	}
}

func newSender(t testing.TB, a apns.AppConfig) *apns.Sender {
	t.Helper()
	s, err := apns.New(apns.Config{Apps: []apns.AppConfig{a}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// TestCertificateDelivery pushes with every certificate kind in every file
// format to each environment: the environments the certificate covers
// deliver at their gateway, the others have no credentials.
func TestCertificateDelivery(t *testing.T) {
	sim := pushsimtest.Start(t, pushsim.Config{})
	var serial uint64
	for _, kind := range []pushsim.CertKind{pushsim.CertDevelopment, pushsim.CertProduction, pushsim.CertUniversal} {
		cert := issue(t, sim, pushsim.ClientCertRequest{Kind: kind})
		for _, f := range certFormats {
			t.Run(string(kind)+"/"+f.name, func(t *testing.T) {
				a := certApp(t, sim)
				configure(&a, kind, f.write(t, t.TempDir(), cert))
				s := newSender(t, a)
				for _, c := range []struct {
					env      string
					simEnv   pushsim.Env
					listener string
					covered  bool
				}{
					{apns.Production, pushsim.Production, pushsim.ListenerAPNsProduction, kind != pushsim.CertDevelopment},
					{apns.Development, pushsim.Development, pushsim.ListenerAPNsDevelopment, kind != pushsim.CertProduction},
				} {
					serial++
					tok := sim.Minter().APNs(pushsim.FateValid, c.simEnv, topic, serial)
					res := s.Send(t.Context(), appID, apns.Request{Token: tok, Env: c.env, Payload: payload})
					if !c.covered {
						if res.Outcome != outcome.NoCredentials {
							t.Errorf("%s: outcome %s (err %v), want no_credentials", c.env, res.Outcome, res.Err)
						}
						continue
					}
					want(t, res, outcome.Delivered, http.StatusOK, "")
					rc, ok := sim.Receipt(tok)
					if !ok || rc.Listener != c.listener || rc.Count != 1 || rc.Headers["apns-topic"] != topic {
						t.Errorf("%s: receipt %+v (found %v), want one at %s for %s", c.env, rc, ok, c.listener, topic)
					}
				}
			})
		}
	}
}

// TestUniversalCertificate serves both environments of one app with one
// certificate, takes the topic from it when the app names none, and pushes
// to its VoIP topic.
func TestUniversalCertificate(t *testing.T) {
	sim := pushsimtest.Start(t, pushsim.Config{})
	cert := issue(t, sim, pushsim.ClientCertRequest{Kind: pushsim.CertUniversal})
	a := certApp(t, sim)
	a.Topic = "" // from the certificate
	a.Certificate = certFormats[0].write(t, t.TempDir(), cert)
	s := newSender(t, a)

	prod := sim.Minter().APNs(pushsim.FateValid, pushsim.Production, topic, 1)
	dev := sim.Minter().APNs(pushsim.FateValid, pushsim.Development, topic, 2)
	want(t, s.Send(t.Context(), appID, apns.Request{Token: prod, Env: apns.Production, Payload: payload}), outcome.Delivered, 200, "")
	want(t, s.Send(t.Context(), appID, apns.Request{Token: dev, Env: apns.Development, Payload: payload}), outcome.Delivered, 200, "")
	if rc, _ := sim.Receipt(prod); rc.Listener != pushsim.ListenerAPNsProduction || rc.Headers["apns-topic"] != topic {
		t.Errorf("production receipt %+v", rc)
	}
	if rc, _ := sim.Receipt(dev); rc.Listener != pushsim.ListenerAPNsDevelopment || rc.Headers["apns-topic"] != topic {
		t.Errorf("development receipt %+v", rc)
	}

	const voip = topic + ".voip"
	for i, env := range []pushsim.Env{pushsim.Production, pushsim.Development} {
		tok := sim.Minter().APNs(pushsim.FateValid, env, voip, uint64(10+i))
		name := map[pushsim.Env]string{pushsim.Production: apns.Production, pushsim.Development: apns.Development}[env]
		res := s.Send(t.Context(), appID, apns.Request{Token: tok, Env: name, Topic: voip, PushType: "voip", Priority: 10, Payload: []byte(`{"call":"c-1"}`)})
		want(t, res, outcome.Delivered, 200, "")
		if rc, _ := sim.Receipt(tok); rc.Headers["apns-topic"] != voip || rc.Headers["apns-push-type"] != "voip" {
			t.Errorf("%s voip receipt headers %v", env, rc.Headers)
		}
	}
}

// TestCertificateErrors checks that New refuses each bad certificate with
// an error that names the file and never shows the password.
func TestCertificateErrors(t *testing.T) {
	sim := pushsimtest.Start(t, pushsim.Config{})
	now := time.Now()
	good := issue(t, sim, pushsim.ClientCertRequest{Kind: pushsim.CertUniversal})
	other := issue(t, sim, pushsim.ClientCertRequest{Kind: pushsim.CertProduction})
	dev := issue(t, sim, pushsim.ClientCertRequest{Kind: pushsim.CertDevelopment})
	expired := issue(t, sim, pushsim.ClientCertRequest{Kind: pushsim.CertProduction, NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.Add(-48 * time.Hour)})
	future := issue(t, sim, pushsim.ClientCertRequest{Kind: pushsim.CertProduction, NotBefore: now.Add(48 * time.Hour), NotAfter: now.AddDate(1, 0, 0)})
	otherApp := issue(t, sim, pushsim.ClientCertRequest{Kind: pushsim.CertUniversal, BundleID: "com.example.other"})
	key, err := sim.NewAPNsKey("", "")
	if err != nil {
		t.Fatal(err)
	}
	p8, err := key.P8()
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := other.KeyPEM("")
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	file := func(name string, b []byte) string { return pushsimtest.WriteFile(t, dir, name, b) }
	wrong := secret.Secret("not-the-" + certPassword)
	cases := []struct {
		name string
		app  func(*apns.AppConfig)
		want []string // besides the file name
	}{
		{"missing file", func(a *apns.AppConfig) {
			a.Certificate = apns.Certificate{File: filepath.Join(dir, "missing.p12"), Password: certPassword}
		}, []string{"no such file"}},
		{"wrong password p12 modern", func(a *apns.AppConfig) {
			a.Certificate = apns.Certificate{File: file("modern.p12", p12(t, good, false)), Password: wrong}
		}, []string{"wrong password"}},
		{"wrong password p12 legacy", func(a *apns.AppConfig) {
			a.Certificate = apns.Certificate{File: file("legacy.p12", p12(t, good, true)), Password: wrong}
		}, []string{"wrong password"}},
		{"no password p12", func(a *apns.AppConfig) {
			a.Certificate = apns.Certificate{File: file("nopass.p12", p12(t, good, false))}
		}, []string{"password"}},
		{"wrong password pem key", func(a *apns.AppConfig) {
			a.Certificate = apns.Certificate{File: file("enc.pem", certPEM(t, good, certPassword)), Password: wrong}
		}, []string{"wrong password"}},
		{"no password pem key", func(a *apns.AppConfig) {
			a.Certificate = apns.Certificate{File: file("enc2.pem", certPEM(t, good, certPassword))}
		}, []string{"encrypted", "password"}},
		{"p8 key as certificate", func(a *apns.AppConfig) {
			a.Certificate = apns.Certificate{File: file("AuthKey.p8", p8), Password: certPassword}
		}, []string{"no certificate", "token authentication"}},
		{"CA certificate", func(a *apns.AppConfig) {
			a.Certificate = apns.Certificate{File: file("ca.pem", sim.CA().CertPEM()), Password: certPassword}
		}, []string{"not an APNs client certificate", "CA certificate"}},
		{"not a certificate", func(a *apns.AppConfig) {
			a.Certificate = apns.Certificate{File: file("junk.p12", []byte("hello")), Password: certPassword}
		}, []string{"PKCS#12"}},
		{"key of another certificate", func(a *apns.AppConfig) {
			a.Certificate = apns.Certificate{File: file("mismatch.pem", append(good.CertPEM(), otherKey...))}
		}, []string{"does not belong"}},
		{"certificate without key", func(a *apns.AppConfig) {
			a.Certificate = apns.Certificate{File: file("nokey.pem", good.CertPEM())}
		}, []string{"no private key"}},
		{"expired", func(a *apns.AppConfig) {
			a.ProductionCertificate = apns.Certificate{File: file("expired.p12", p12(t, expired, false)), Password: certPassword}
		}, []string{"expired on " + expired.Cert.NotAfter.UTC().Format(time.RFC3339)}},
		{"not yet valid", func(a *apns.AppConfig) {
			a.ProductionCertificate = apns.Certificate{File: file("future.p12", p12(t, future, false)), Password: certPassword}
		}, []string{"not valid until " + future.Cert.NotBefore.UTC().Format(time.RFC3339)}},
		{"development certificate for production", func(a *apns.AppConfig) {
			a.ProductionCertificate = apns.Certificate{File: file("dev.p12", p12(t, dev, false)), Password: certPassword}
		}, []string{"development-only", "configured for production"}},
		{"production certificate for development", func(a *apns.AppConfig) {
			a.DevelopmentCertificate = apns.Certificate{File: file("prod.p12", p12(t, other, false)), Password: certPassword}
		}, []string{"production-only", "configured for development"}},
		{"development certificate as universal", func(a *apns.AppConfig) {
			a.Certificate = apns.Certificate{File: file("dev-universal.p12", p12(t, dev, false)), Password: certPassword}
		}, []string{"development-only", "universal", "production"}},
		{"topic not covered", func(a *apns.AppConfig) {
			a.Certificate = apns.Certificate{File: file("other-app.p12", p12(t, otherApp, false)), Password: certPassword}
		}, []string{"com.example.other", `not the app's topic "` + topic + `"`}},
		{"topic not covered, per environment", func(a *apns.AppConfig) {
			a.ProductionCertificate = apns.Certificate{File: file("other-prod.pem", certPEM(t, other, "")), Password: ""}
			a.Topic = "com.example.elsewhere"
		}, []string{"not the app's topic"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := certApp(t, sim)
			c.app(&a)
			s, err := apns.New(apns.Config{Apps: []apns.AppConfig{a}})
			if err == nil {
				s.Close()
				t.Fatal("New succeeded")
			}
			msg := err.Error()
			t.Log(msg)
			f := a.Certificate.File + a.ProductionCertificate.File + a.DevelopmentCertificate.File
			for _, w := range append([]string{f, `"` + appID + `"`}, c.want...) {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if strings.Contains(msg, certPassword) {
				t.Errorf("error %q shows the password", msg)
			}
		})
	}
}

// TestCertificateConfigErrors checks the credential combinations New
// refuses before reading any file.
func TestCertificateConfigErrors(t *testing.T) {
	sim := pushsimtest.Start(t, pushsim.Config{})
	cert := apns.Certificate{File: "/nonexistent/cert.p12", Password: certPassword}
	cases := []struct {
		name string
		app  func(*apns.AppConfig)
		want string
	}{
		{"key and certificate", func(a *apns.AppConfig) {
			a.KeyFile, a.KeyID, a.TeamID, a.Certificate = "/nonexistent/k.p8", "ABCDEFGHIJ", "TEAM123456", cert
		}, "one kind of credentials"},
		{"universal and per environment", func(a *apns.AppConfig) {
			a.Certificate, a.ProductionCertificate = cert, cert
		}, "one or the other"},
		{"password without file", func(a *apns.AppConfig) {
			a.DevelopmentCertificate = apns.Certificate{Password: certPassword}
		}, "no file"},
		{"no credentials", func(a *apns.AppConfig) {}, "key file (.p8) or certificate is required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := certApp(t, sim)
			c.app(&a)
			_, err := apns.New(apns.Config{Apps: []apns.AppConfig{a}})
			if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), certPassword) {
				t.Fatalf("err = %v, want one containing %q and no password", err, c.want)
			}
		})
	}
}

// encryptedKeys sets up what the encrypted-key tests share: a simulator,
// a universal certificate, and openssl (the independent encoder: keys
// pushd's own tests encrypted would only prove the code agrees with
// itself), which encrypts the certificate's key with the arguments given.
func encryptedKeys(t *testing.T) (*pushsim.Sim, *pushsim.ClientCert, func(args ...string) []byte) {
	t.Helper()
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		testenv.Need(t, "the openssl command", err, "apt-get install openssl; scripts/ensure-tools.sh does")
	}
	sim := pushsimtest.Start(t, pushsim.Config{})
	cert := issue(t, sim, pushsim.ClientCertRequest{Kind: pushsim.CertUniversal})
	plain, err := cert.KeyPEM("")
	if err != nil {
		t.Fatal(err)
	}
	in := pushsimtest.WriteFile(t, t.TempDir(), "key.pem", plain)
	return sim, cert, func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(openssl, append([]string{"pkcs8", "-topk8", "-in", in, "-passout", "pass:" + certPassword}, args...)...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("openssl pkcs8 %v: %v: %s", args, err, stderr.String())
		}
		return out
	}
}

// TestEncryptedKeyVariants loads PEM keys encrypted by OpenSSL with each
// PBES2 cipher, PBKDF2 hash and scrypt that pushd reads, beyond pushsim's
// AES-256 and SHA-256.
func TestEncryptedKeyVariants(t *testing.T) {
	sim, cert, encrypt := encryptedKeys(t)
	dir := t.TempDir()
	for i, v := range []struct {
		name string
		args []string
	}{
		{"aes128/hmacWithSHA1", []string{"-v2", "aes128", "-v2prf", "hmacWithSHA1"}},
		{"aes192/hmacWithSHA512", []string{"-v2", "aes192", "-v2prf", "hmacWithSHA512"}},
		{"aes256/hmacWithSHA384", []string{"-v2", "aes256", "-v2prf", "hmacWithSHA384"}},
		{"des3/hmacWithSHA256", []string{"-v2", "des3"}},
		{"aes256/scrypt", []string{"-v2", "aes256", "-scrypt"}},
	} {
		t.Run(v.name, func(t *testing.T) {
			a := certApp(t, sim)
			a.Certificate = apns.Certificate{File: pushsimtest.WriteFile(t, dir, fmt.Sprintf("key%d.pem", i), append(cert.CertPEM(), encrypt(v.args...)...)), Password: certPassword}
			s := newSender(t, a)
			tok := sim.Minter().APNs(pushsim.FateValid, pushsim.Production, topic, uint64(100+i))
			want(t, s.Send(t.Context(), appID, apns.Request{Token: tok, Payload: payload}), outcome.Delivered, 200, "")
		})
	}
}

// The ASN.1 of an encrypted PKCS#8 key, for editing OpenSSL's output into
// the damaged and hostile files OpenSSL would not write.
type (
	encryptedKeyInfo struct {
		Algo pkix.AlgorithmIdentifier
		Data []byte
	}
	pbes2Params struct{ KDF, Scheme pkix.AlgorithmIdentifier }
)

// edit applies fn to the encryption parameters of the encrypted PEM key b.
func edit(t *testing.T, b []byte, fn func(info *encryptedKeyInfo, p *pbes2Params)) []byte {
	t.Helper()
	blk, _ := pem.Decode(b)
	var info encryptedKeyInfo
	var p pbes2Params
	if _, err := asn1.Unmarshal(blk.Bytes, &info); err != nil {
		t.Fatal(err)
	}
	if _, err := asn1.Unmarshal(info.Algo.Parameters.FullBytes, &p); err != nil {
		t.Fatal(err)
	}
	fn(&info, &p)
	info.Algo.Parameters = rawASN1(t, p)
	der, err := asn1.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: blk.Type, Bytes: der})
}

func rawASN1(t *testing.T, v any) asn1.RawValue {
	t.Helper()
	b, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return asn1.RawValue{FullBytes: b}
}

// TestEncryptedKeyRefused checks that keys pushd cannot or will not
// decrypt are refused, at start, with an error that says why, names the
// file and never shows the password; none crashes pushd or makes it work
// for minutes.
func TestEncryptedKeyRefused(t *testing.T) {
	sim, cert, encrypt := encryptedKeys(t)
	aes := encrypt("-v2", "aes256")
	type pbkdf2 struct {
		Salt      []byte
		Iteration int
		PRF       pkix.AlgorithmIdentifier `asn1:"optional"`
	}
	withPBKDF2 := func(fn func(k *pbkdf2)) func(*encryptedKeyInfo, *pbes2Params) {
		return func(_ *encryptedKeyInfo, p *pbes2Params) {
			var k pbkdf2
			if _, err := asn1.Unmarshal(p.KDF.Parameters.FullBytes, &k); err != nil {
				t.Fatal(err)
			}
			fn(&k)
			p.KDF.Parameters = rawASN1(t, k)
		}
	}
	cases := []struct {
		name string
		key  []byte
		want []string
	}{
		{"PKCS#5 v1.5 encryption", encrypt("-v1", "PBE-SHA1-3DES"), []string{"cannot be read", "PBES2", "re-encrypt"}},
		{"unsupported cipher", encrypt("-v2", "camellia256"), []string{"unsupported cipher", "re-encrypt"}},
		{"unsupported hash", encrypt("-v2", "aes256", "-v2prf", "hmacWithSHA224"), []string{"PBKDF2 hash", "not supported"}},
		{"iterations beyond the bound", edit(t, aes, withPBKDF2(func(k *pbkdf2) { k.Iteration = 1 << 30 })), []string{"1073741824 PBKDF2 iterations"}},
		{"no iterations", edit(t, aes, withPBKDF2(func(k *pbkdf2) { k.Iteration = 0 })), []string{"0 PBKDF2 iterations"}},
		{"scrypt beyond the bound", edit(t, encrypt("-v2", "aes256", "-scrypt"), func(_ *encryptedKeyInfo, p *pbes2Params) {
			p.KDF.Parameters = rawASN1(t, struct {
				Salt    []byte
				N, R, P int
			}{[]byte("salt"), 1 << 30, 8, 1})
		}), []string{"scrypt N=1073741824 r=8 p=1"}},
		{"short IV", edit(t, aes, func(_ *encryptedKeyInfo, p *pbes2Params) { p.Scheme.Parameters = rawASN1(t, make([]byte, 8)) }),
			[]string{"bad encrypted private key", "IV"}},
		{"data not whole blocks", edit(t, aes, func(info *encryptedKeyInfo, _ *pbes2Params) { info.Data = info.Data[:len(info.Data)-3] }),
			[]string{"bad encrypted private key", "data"}},
	}
	dir := t.TempDir()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := certApp(t, sim)
			a.Certificate = apns.Certificate{File: pushsimtest.WriteFile(t, dir, fmt.Sprintf("key%d.pem", i), append(cert.CertPEM(), c.key...)), Password: certPassword}
			start := time.Now()
			s, err := apns.New(apns.Config{Apps: []apns.AppConfig{a}})
			if err == nil {
				s.Close()
				t.Fatal("New succeeded")
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("refusing took %v", d)
			}
			msg := err.Error()
			t.Log(msg)
			for _, w := range append([]string{a.Certificate.File}, c.want...) {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if strings.Contains(msg, certPassword) {
				t.Errorf("error %q shows the password", msg)
			}
		})
	}
}
