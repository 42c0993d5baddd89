package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/logtest"
	"github.com/pushd/pushd/internal/pushsim"
	"software.sslmate.com/src/go-pkcs12"
)

// loopback has serve listen on free ports, so tests run side by side.
var loopback = []string{
	"--apns-production", "127.0.0.1:0",
	"--apns-development", "127.0.0.1:0",
	"--fcm", "127.0.0.1:0",
	"--control", "127.0.0.1:0",
}

type result struct {
	code           int
	stdout, stderr string
}

// pushsimRun runs a command to completion. A serve that starts is stopped at
// once, so a case that wrongly succeeds fails instead of hanging.
func pushsimRun(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var stdout, stderr logtest.Buffer
	c := &cli{stdout: &stdout, stderr: &stderr, started: func(*pushsim.Sim) { cancel() }}
	code := c.run(ctx, args)
	return result{code, stdout.String(), stderr.String()}
}

type server struct {
	sim    *pushsim.Sim
	stdout string
	stderr *logtest.Buffer
	cancel context.CancelFunc
	done   chan int
}

// startServe runs serve until the test ends or stop is called.
func startServe(t *testing.T, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var stdout, stderr logtest.Buffer
	started := make(chan *pushsim.Sim, 1)
	c := &cli{stdout: &stdout, stderr: &stderr, started: func(s *pushsim.Sim) { started <- s }}
	s := &server{stderr: &stderr, cancel: cancel, done: make(chan int, 1)}
	go func() { s.done <- c.run(ctx, append(append([]string{"serve"}, loopback...), args...)) }()
	t.Cleanup(func() { s.stop() })
	select {
	case s.sim = <-started:
	case code := <-s.done:
		s.done <- code
		t.Fatalf("serve exited with %d before starting; stderr:\n%s", code, stderr.String())
	case <-time.After(time.Minute):
		t.Fatal("serve did not start within a minute")
	}
	s.stdout = stdout.String()
	return s
}

// stop ends serve and returns its exit status.
func (s *server) stop() int {
	s.cancel()
	code := <-s.done
	s.done <- code
	return code
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %v, want %v", path, got, want)
	}
}

// pathsIn lists the words of out that name something under dir.
func pathsIn(out, dir string) []string {
	var paths []string
	for _, w := range strings.Fields(out) {
		if strings.HasPrefix(w, dir+string(filepath.Separator)) {
			paths = append(paths, w)
		}
	}
	return paths
}

func checkNoSecrets(t *testing.T, out string) {
	t.Helper()
	if strings.Contains(out, "-----BEGIN") {
		t.Errorf("output shows key material:\n%s", out)
	}
}

func TestServeMakesThenReusesState(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startServe(t, "--dir", dir, "--team-id", "TEAM000042")
	out := s.stdout

	for _, want := range []string{
		s.sim.APNsURL(pushsim.Production),
		s.sim.APNsURL(pushsim.Development),
		s.sim.FCMURL(),
		s.sim.FCMEndpoint(),
		s.sim.TokenURL(),
		s.sim.ControlURL(),
		filepath.Join(dir, "ca.pem"),
		"TEAM000042",
		`.p12 password "pushsim"`,
		"pushsim mint --seed pushsim",
		"project pushsim-demo",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	checkNoSecrets(t, out)
	paths := pathsIn(out, dir)
	if len(paths) < 6 {
		t.Errorf("summary names %d paths under %s, want CA, key, 3 certificates and a service account:\n%s", len(paths), dir, out)
	}
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("summary names %s: %v", p, err)
		}
	}
	if !strings.Contains(s.stderr.String(), "msg=ready") {
		t.Errorf("stderr lacks the ready line:\n%s", s.stderr.String())
	}

	keys, _ := filepath.Glob(filepath.Join(dir, "apns", "AuthKey_*.p8"))
	if len(keys) != 1 {
		t.Fatalf("made APNs keys %q, want one", keys)
	}
	keyID := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(keys[0]), "AuthKey_"), ".p8")
	if !regexp.MustCompile(`^[A-Z0-9]{10}$`).MatchString(keyID) {
		t.Errorf("key id %q, want ten characters like Apple's", keyID)
	}
	if !strings.Contains(out, "key id "+keyID) {
		t.Errorf("summary lacks key id %s", keyID)
	}
	if got := s.sim.APNsKeys(); !slices.Equal(got, []string{keyID}) {
		t.Errorf("simulator accepts keys %q, want [%s]", got, keyID)
	}
	var teams map[string]string
	if err := json.Unmarshal(readFile(t, filepath.Join(dir, "apns", "keys.json")), &teams); err != nil || teams[keyID] != "TEAM000042" {
		t.Errorf("keys.json = %v (%v), want %s: TEAM000042", teams, err, keyID)
	}
	for _, f := range []string{
		"ca-key.pem", keys[0][len(dir)+1:],
		"apns/certs/development.pem", "apns/certs/development.p12",
		"apns/certs/production.pem", "apns/certs/production.p12",
		"apns/certs/universal.pem", "apns/certs/universal.p12",
		"fcm/pushsim-demo.json",
	} {
		checkMode(t, filepath.Join(dir, f), 0o600)
	}
	for _, d := range []string{"apns", "apns/certs", "fcm"} {
		checkMode(t, filepath.Join(dir, d), 0o700)
	}
	saPath := filepath.Join(dir, "fcm", "pushsim-demo.json")
	saJSON := readFile(t, saPath)
	sa, err := pushsim.ParseServiceAccount(saJSON)
	if err != nil {
		t.Fatal(err)
	}
	if got := pushsim.TokenURI(saJSON); got != s.sim.TokenURL() {
		t.Errorf("token_uri %q, want %q", got, s.sim.TokenURL())
	}
	if !strings.Contains(out, sa.ClientEmail) {
		t.Errorf("summary lacks client_email %s", sa.ClientEmail)
	}
	if code := s.stop(); code != 0 {
		t.Fatalf("serve exited %d; stderr:\n%s", code, s.stderr.String())
	}

	caPEM := readFile(t, filepath.Join(dir, "ca.pem"))
	keyPEM := readFile(t, keys[0])
	certPEM := readFile(t, filepath.Join(dir, "apns", "certs", "universal.pem"))

	s2 := startServe(t, "--dir", dir)
	if !bytes.Equal(readFile(t, filepath.Join(dir, "ca.pem")), caPEM) {
		t.Error("second start replaced the CA")
	}
	if !bytes.Equal(readFile(t, keys[0]), keyPEM) {
		t.Error("second start replaced the APNs key")
	}
	if !bytes.Equal(readFile(t, filepath.Join(dir, "apns", "certs", "universal.pem")), certPEM) {
		t.Error("second start replaced a certificate")
	}
	if keys2, _ := filepath.Glob(filepath.Join(dir, "apns", "AuthKey_*.p8")); !slices.Equal(keys2, keys) {
		t.Errorf("second start left keys %q, want %q", keys2, keys)
	}
	if got := s2.sim.APNsKeys(); !slices.Equal(got, []string{keyID}) {
		t.Errorf("second start accepts keys %q, want [%s]", got, keyID)
	}
	if !strings.Contains(s2.stdout, "team id TEAM000042") {
		t.Errorf("second start forgot the key's team id (keys.json):\n%s", s2.stdout)
	}
	if strings.Contains(s2.stdout, "created") {
		t.Errorf("second start says it created something:\n%s", s2.stdout)
	}
	// New ports, so the service account's token_uri must follow.
	saJSON2 := readFile(t, saPath)
	sa2, err := pushsim.ParseServiceAccount(saJSON2)
	if err != nil {
		t.Fatal(err)
	}
	if sa2.ClientEmail != sa.ClientEmail || !sa2.Key.Equal(sa.Key) {
		t.Error("second start replaced the service account")
	}
	if got := pushsim.TokenURI(saJSON2); got != s2.sim.TokenURL() {
		t.Errorf("token_uri after restart %q, want %q", got, s2.sim.TokenURL())
	}
	if !strings.Contains(s2.stderr.String(), "rewrote service account token_uri") {
		t.Errorf("restart did not say it rewrote token_uri:\n%s", s2.stderr.String())
	}
	checkMode(t, saPath, 0o600)
}

// TestServeAcceptsItsCredentials checks the pieces fit: a sender trusting
// ca.pem, with a bearer from 'pushsim bearer' or a certificate from the
// state directory, and a token from 'pushsim mint', gets the minted fate.
func TestServeAcceptsItsCredentials(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startServe(t, "--dir", dir, "--seed", "e2e", "--topic", "com.example.e2e")

	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(readFile(t, filepath.Join(dir, "ca.pem"))) {
		t.Fatal("ca.pem holds no certificate")
	}
	bearer := pushsimRun(t, "bearer", "--dir", dir)
	if bearer.code != 0 {
		t.Fatalf("bearer: %d %s", bearer.code, bearer.stderr)
	}
	mint := func(fate string) string {
		r := pushsimRun(t, "mint", "--seed", "e2e", "--env", "development", "--topic", "com.example.e2e", "--fate", fate)
		if r.code != 0 {
			t.Fatalf("mint: %d %s", r.code, r.stderr)
		}
		return strings.TrimSpace(r.stdout)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "apns", "certs", "development.pem"), filepath.Join(dir, "apns", "certs", "development.pem"))
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name   string
		cert   *tls.Certificate
		bearer string
		fate   string
		want   int
	}{
		{"token auth", nil, strings.TrimSpace(bearer.stdout), "valid", http.StatusOK},
		{"token auth unregistered", nil, strings.TrimSpace(bearer.stdout), "unregistered", http.StatusGone},
		{"certificate auth", &cert, "", "valid", http.StatusOK},
	} {
		var protos http.Protocols
		protos.SetHTTP2(true)
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, Protocols: &protos}
		if tc.cert != nil {
			tr.TLSClientConfig.Certificates = []tls.Certificate{*tc.cert}
		}
		req, err := http.NewRequest(http.MethodPost, s.sim.APNsURL(pushsim.Development)+"/3/device/"+mint(tc.fate), strings.NewReader(`{"aps":{"alert":"hi"}}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("apns-topic", "com.example.e2e")
		if tc.bearer != "" {
			req.Header.Set("authorization", "bearer "+tc.bearer)
		}
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		body := new(bytes.Buffer)
		body.ReadFrom(resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: status %d %s, want %d", tc.name, resp.StatusCode, body, tc.want)
		}
	}
}

func TestServeWithGivenCAAndServerCert(t *testing.T) {
	t.Parallel()
	dir, files := t.TempDir(), t.TempDir()
	ca, err := pushsim.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	caKey, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	tlsCA, err := pushsim.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	server, err := tlsCA.ServerCert()
	if err != nil {
		t.Fatal(err)
	}
	serverKey, err := x509.MarshalPKCS8PrivateKey(server.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string][]byte{
		"ca.pem":      ca.CertPEM(),
		"ca-key.pem":  caKey,
		"tls.pem":     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: server.Certificate[0]}),
		"tls-key.pem": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: serverKey}),
	}
	for name, b := range paths {
		if err := os.WriteFile(filepath.Join(files, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s := startServe(t, "--dir", dir,
		"--ca-cert", filepath.Join(files, "ca.pem"), "--ca-key", filepath.Join(files, "ca-key.pem"),
		"--tls-cert", filepath.Join(files, "tls.pem"), "--tls-key", filepath.Join(files, "tls-key.pem"))

	if _, err := os.Stat(filepath.Join(dir, "ca.pem")); err == nil {
		t.Error("serve made a CA in --dir although --ca-cert was given")
	}
	if !s.sim.CA().Cert.Equal(ca.Cert) {
		t.Error("simulator does not use the --ca-cert CA")
	}
	for _, want := range []string{filepath.Join(files, "tls.pem"), filepath.Join(files, "ca.pem")} {
		if !strings.Contains(s.stdout, want) {
			t.Errorf("summary lacks %s:\n%s", want, s.stdout)
		}
	}
	// The state directory's certificates come from the given CA.
	leaf, err := tls.LoadX509KeyPair(filepath.Join(dir, "apns", "certs", "production.pem"), filepath.Join(dir, "apns", "certs", "production.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.Leaf.CheckSignatureFrom(ca.Cert); err != nil {
		t.Errorf("production.pem is not issued by --ca-cert: %v", err)
	}

	conn, err := tls.Dial("tcp", strings.TrimPrefix(s.sim.FCMURL(), "https://"), &tls.Config{RootCAs: tlsCA.Pool(), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("TLS to the FCM listener with --tls-cert's CA: %v", err)
	}
	defer conn.Close()
	if got := conn.ConnectionState().PeerCertificates[0]; !got.Equal(server.Leaf) {
		t.Error("listener does not present --tls-cert")
	}
}

func TestCert(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	other := t.TempDir()
	for _, tc := range []struct {
		name      string
		args      []string
		prefix    string // relative to dir
		kind      pushsim.CertKind
		password  string // of the .pem key; "" is plain
		p12       string
		expired   bool
		wantTopic string
	}{
		{"development", []string{"--kind", "development", "--topic", "com.example.dev"}, "apns/certs/com.example.dev-development", pushsim.CertDevelopment, "", "pushsim", false, "com.example.dev"},
		{"production with password", []string{"--kind", "production", "--topic", "com.example.prod", "--password", "s3cret"}, "apns/certs/com.example.prod-production", pushsim.CertProduction, "s3cret", "s3cret", false, "com.example.prod"},
		{"universal legacy p12", []string{"--kind", "universal", "--topic", "com.example.uni", "--legacy-p12", "--days", "30"}, "apns/certs/com.example.uni-universal", pushsim.CertUniversal, "", "pushsim", false, "com.example.uni"},
		{"expired", []string{"--kind", "development", "--topic", "com.example.dev", "--expired"}, "apns/certs/com.example.dev-development-expired", pushsim.CertDevelopment, "", "pushsim", true, "com.example.dev"},
		{"out", []string{"--kind", "universal", "--topic", "com.example.out", "--out", filepath.Join(other, "sub", "mine.pem")}, "", pushsim.CertUniversal, "", "pushsim", false, "com.example.out"},
	} {
		r := pushsimRun(t, append([]string{"cert", "--dir", dir}, tc.args...)...)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("%s: exit %d, stderr %q", tc.name, r.code, r.stderr)
		}
		checkNoSecrets(t, r.stdout)
		if tc.password != "" && strings.Contains(r.stdout, tc.password) {
			t.Errorf("%s: output shows the password:\n%s", tc.name, r.stdout)
		}
		prefix := filepath.Join(dir, tc.prefix)
		if tc.prefix == "" {
			prefix = filepath.Join(other, "sub", "mine")
		}
		for _, p := range []string{prefix + ".pem", prefix + ".p12"} {
			if !strings.Contains(r.stdout, p) {
				t.Errorf("%s: output does not name %s:\n%s", tc.name, p, r.stdout)
			}
			checkMode(t, p, 0o600)
		}

		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(readFile(t, filepath.Join(dir, "ca.pem")))
		var blocks []*pem.Block
		for rest := readFile(t, prefix+".pem"); ; {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				break
			}
			blocks = append(blocks, b)
		}
		var types []string
		for _, b := range blocks {
			types = append(types, b.Type)
		}
		wantKey := "PRIVATE KEY"
		if tc.password != "" {
			wantKey = "ENCRYPTED PRIVATE KEY"
		}
		if want := []string{"CERTIFICATE", "CERTIFICATE", wantKey}; !slices.Equal(types, want) {
			t.Fatalf("%s: .pem blocks %q, want %q", tc.name, types, want)
		}
		leaf, err := x509.ParseCertificate(blocks[0].Bytes)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if kind, topic := describeCert(leaf); kind != string(tc.kind) || topic != tc.wantTopic {
			t.Errorf("%s: certificate is %s for %s, want %s for %s", tc.name, kind, topic, tc.kind, tc.wantTopic)
		}
		if got := time.Now().After(leaf.NotAfter); got != tc.expired {
			t.Errorf("%s: expired = %v (NotAfter %v), want %v", tc.name, got, leaf.NotAfter, tc.expired)
		}
		if !tc.expired {
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Errorf("%s: does not chain to ca.pem: %v", tc.name, err)
			}
		}
		key, p12Leaf, chain, err := pkcs12.DecodeChain(readFile(t, prefix+".p12"), tc.p12)
		if err != nil {
			t.Fatalf("%s: .p12: %v", tc.name, err)
		}
		if !p12Leaf.Equal(leaf) || len(chain) != 1 || key == nil {
			t.Errorf("%s: .p12 holds another certificate or chain (%d)", tc.name, len(chain))
		}
	}
}

func TestServiceAccount(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := filepath.Join(t.TempDir(), "sa.json")
	r := pushsimRun(t, "service-account", "--dir", dir, "--project", "my-proj", "--out", out)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	checkNoSecrets(t, r.stdout)
	path := filepath.Join(dir, "fcm", "my-proj.json")
	b := readFile(t, path)
	sa, err := pushsim.ParseServiceAccount(b)
	if err != nil {
		t.Fatal(err)
	}
	if sa.ProjectID != "my-proj" {
		t.Errorf("project %q, want my-proj", sa.ProjectID)
	}
	if got := pushsim.TokenURI(b); got != "https://127.0.0.1:2199/token" {
		t.Errorf("token_uri %q", got)
	}
	for _, want := range []string{path, out, sa.ClientEmail} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	if !bytes.Equal(readFile(t, out), b) {
		t.Error("--out copy differs from the state directory's")
	}
	checkMode(t, path, 0o600)
	checkMode(t, out, 0o600)

	// serve must take the account as it is, not make another for the project.
	s := startServe(t, "--dir", dir, "--project", "my-proj")
	if got := s.sim.ServiceAccounts(); len(got) != 1 || got[0].ClientEmail != sa.ClientEmail {
		t.Errorf("serve knows accounts %v, want only %s", got, sa.ClientEmail)
	}
}

func TestAPNsKeyAndBearer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := pushsimRun(t, "apns-key", "--dir", dir, "--key-id", "KEY1234567", "--team-id", "TEAM765432")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	checkNoSecrets(t, r.stdout)
	path := filepath.Join(dir, "apns", "AuthKey_KEY1234567.p8")
	if !strings.Contains(r.stdout, path) {
		t.Errorf("output does not name %s:\n%s", path, r.stdout)
	}
	if _, err := pushsim.ParseP8(readFile(t, path)); err != nil {
		t.Fatal(err)
	}
	checkMode(t, path, 0o600)

	r = pushsimRun(t, "bearer", "--dir", dir)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("bearer: exit %d, stderr %q", r.code, r.stderr)
	}
	if !strings.HasSuffix(r.stdout, "\n") || strings.Count(r.stdout, "\n") != 1 {
		t.Errorf("bearer printed %q, want one line", r.stdout)
	}
	parts := strings.Split(strings.TrimSpace(r.stdout), ".")
	if len(parts) != 3 {
		t.Fatalf("bearer %q has %d parts, want 3", r.stdout, len(parts))
	}
	var head struct{ Alg, Kid string }
	var claims struct {
		Iss string
		Iat int64
	}
	for i, v := range []any{&head, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatal(err)
		}
	}
	if head.Alg != "ES256" || head.Kid != "KEY1234567" || claims.Iss != "TEAM765432" || time.Since(time.Unix(claims.Iat, 0)) > time.Minute {
		t.Errorf("bearer header %+v claims %+v", head, claims)
	}

	// With two keys, bearer must be told which.
	if r := pushsimRun(t, "apns-key", "--dir", dir); r.code != 0 {
		t.Fatalf("second apns-key: %d %s", r.code, r.stderr)
	}
	if r := pushsimRun(t, "bearer", "--dir", dir); r.code != 2 || !strings.Contains(r.stderr, "--key-id") {
		t.Errorf("bearer with two keys: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := pushsimRun(t, "bearer", "--dir", dir, "--key-id", "KEY1234567"); r.code != 0 {
		t.Errorf("bearer --key-id: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := pushsimRun(t, "apns-key", "--dir", dir, "--key-id", "KEY1234567"); r.code != 1 || !strings.Contains(r.stderr, path) {
		t.Errorf("apns-key over an existing key: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestMint(t *testing.T) {
	t.Parallel()
	r := pushsimRun(t, "mint", "--provider", "apns", "--fate", "unregistered", "--env", "development", "--topic", "com.example.x", "-n", "5", "--seed", "s1")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	tokens := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(tokens) != 5 {
		t.Fatalf("printed %d tokens, want 5:\n%s", len(tokens), r.stdout)
	}
	hex64 := regexp.MustCompile(`^[0-9a-f]{64}$`)
	m := pushsim.NewMinter("s1")
	seen := make(map[string]bool)
	for _, tok := range tokens {
		if !hex64.MatchString(tok) {
			t.Errorf("token %q is not 64 hex digits", tok)
		}
		if seen[tok] {
			t.Errorf("token %q printed twice", tok)
		}
		seen[tok] = true
		info, ok := m.ParseAPNs(tok)
		if !ok || info.Fate != pushsim.FateUnregistered || info.Env != pushsim.Development || info.Scope != pushsim.ScopeHash("com.example.x") {
			t.Errorf("token %q reads as %+v, %v", tok, info, ok)
		}
		if _, ok := pushsim.NewMinter("s2").ParseAPNs(tok); ok {
			t.Errorf("token %q passes for another seed's", tok)
		}
	}
	// Tokens are a function of their serial number.
	r2 := pushsimRun(t, "mint", "--provider", "apns", "--fate", "unregistered", "--env", "development", "--topic", "com.example.x", "-n", "2", "--start", "3", "--seed", "s1")
	if got := strings.Fields(r2.stdout); !slices.Equal(got, tokens[3:5]) {
		t.Errorf("--start 3 -n 2 printed %q, want %q", got, tokens[3:5])
	}

	r = pushsimRun(t, "mint", "--provider", "fcm", "--fate", "malformed", "--project", "p1", "-n", "3")
	if r.code != 0 {
		t.Fatalf("fcm: exit %d, stderr %q", r.code, r.stderr)
	}
	fcm := strings.Fields(r.stdout)
	if len(fcm) != 3 || fcm[0] == fcm[1] {
		t.Fatalf("fcm printed %q", fcm)
	}
	for _, tok := range fcm {
		info, ok := pushsim.NewMinter("pushsim").ParseFCM(tok)
		if !ok || info.Fate != pushsim.FateMalformed || info.Scope != pushsim.ScopeHash("p1") {
			t.Errorf("fcm token %q reads as %+v, %v", tok, info, ok)
		}
	}
}

func TestHelpAndVersion(t *testing.T) {
	t.Parallel()
	cases := [][]string{{"help"}, {"--help"}, {"-h"}, {"version"}}
	for _, cmd := range commands() {
		cases = append(cases, []string{cmd.name, "--help"}, []string{cmd.name, "-h"}, []string{"help", cmd.name})
	}
	for _, args := range cases {
		r := pushsimRun(t, args...)
		if r.code != 0 || r.stderr != "" || r.stdout == "" {
			t.Errorf("pushsim %q: exit %d, stdout %d bytes, stderr %q", args, r.code, len(r.stdout), r.stderr)
		}
	}
	r := pushsimRun(t, "serve", "--help")
	for _, want := range []string{"Usage: pushsim serve [flags]", "--default-fate fate", `(default "valid")`, "--max-streams number"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("serve --help lacks %q:\n%s", want, r.stdout)
		}
	}
	if r := pushsimRun(t, "mint", "--help"); !strings.Contains(r.stdout, "\n  -n count\n") {
		t.Errorf("mint --help does not show -n with one dash:\n%s", r.stdout)
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	write := func(t *testing.T, path, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Subtests run in parallel, after this function returns.
	t.Cleanup(func() { busy.Close() })
	busyAddr := busy.Addr().String()

	for _, tc := range []struct {
		name string
		// args may use DIR for the case's own state directory.
		args  []string
		setup func(t *testing.T, dir string)
		code  int
		want  []string // in the error line
	}{
		{name: "no command", args: nil, code: 2, want: []string{"no command"}},
		{name: "unknown command", args: []string{"frobnicate"}, code: 2, want: []string{`"frobnicate"`}},
		{name: "help for unknown command", args: []string{"help", "frobnicate"}, code: 2, want: []string{`"frobnicate"`}},
		{name: "unknown flag", args: []string{"serve", "--bogus"}, code: 2, want: []string{"pushsim serve:", "bogus"}},
		{name: "unknown mint flag", args: []string{"mint", "--bogus=1"}, code: 2, want: []string{"pushsim mint:", "bogus"}},
		{name: "stray argument", args: []string{"mint", "extra"}, code: 2, want: []string{`"extra"`}},
		{name: "bad fate", args: []string{"mint", "--fate", "doomed"}, code: 2, want: []string{"--fate", `"doomed"`}},
		{name: "negative count", args: []string{"mint", "-n", "-1"}, code: 2, want: []string{"-n -1"}},
		{name: "count not a number", args: []string{"mint", "-n", "many"}, code: 2, want: []string{"-n", "many"}},
		{name: "bad provider", args: []string{"mint", "--provider", "gcm"}, code: 2, want: []string{"--provider", `"gcm"`}},
		{name: "bad env", args: []string{"mint", "--env", "staging"}, code: 2, want: []string{"--env", `"staging"`}},
		{name: "topic for fcm", args: []string{"mint", "--provider", "fcm", "--topic", "x"}, code: 2, want: []string{"--topic"}},
		{name: "bad default fate", args: []string{"serve", "--dir", "DIR", "--default-fate", "x"}, code: 2, want: []string{"--default-fate", `"x"`, "valid, unregistered or malformed"}},
		{name: "bad address", args: []string{"serve", "--dir", "DIR", "--fcm", "nowhere"}, code: 2, want: []string{"--fcm", `"nowhere"`}},
		{name: "bad max streams", args: []string{"serve", "--dir", "DIR", "--max-streams", "0"}, code: 2, want: []string{"--max-streams"}},
		{name: "bad log level", args: []string{"serve", "--dir", "DIR", "--log-level", "chatty"}, code: 2, want: []string{"--log-level", `"chatty"`}},
		{name: "ca cert without key", args: []string{"serve", "--dir", "DIR", "--ca-cert", "x.pem"}, code: 2, want: []string{"--ca-cert", "--ca-key"}},
		{name: "bad kind", args: []string{"cert", "--dir", "DIR", "--kind", "enterprise", "--topic", "t"}, code: 2, want: []string{"--kind", `"enterprise"`}},
		{name: "no kind", args: []string{"cert", "--dir", "DIR", "--topic", "t"}, code: 2, want: []string{"--kind"}},
		{name: "no topic", args: []string{"cert", "--dir", "DIR", "--kind", "universal"}, code: 2, want: []string{"--topic"}},
		{name: "bad days", args: []string{"cert", "--dir", "DIR", "--kind", "universal", "--topic", "t", "--days", "0"}, code: 2, want: []string{"--days"}},
		{name: "no project", args: []string{"service-account", "--dir", "DIR"}, code: 2, want: []string{"--project"}},
		{name: "project with slash", args: []string{"service-account", "--dir", "DIR", "--project", "../p"}, code: 2, want: []string{"--project", `"../p"`}},
		{name: "bad token uri", args: []string{"service-account", "--dir", "DIR", "--project", "p", "--token-uri", "localhost"}, code: 2, want: []string{"--token-uri"}},
		{name: "bad key id", args: []string{"apns-key", "--dir", "DIR", "--key-id", "../x"}, code: 2, want: []string{"--key-id", `"../x"`}},
		{name: "bearer without keys", args: []string{"bearer", "--dir", "DIR"}, code: 1, want: []string{"no APNs keys", "DIR"}},
		{
			name: "missing CA file",
			args: []string{"serve", "--dir", "DIR", "--ca-cert", "DIR/nope.pem", "--ca-key", "DIR/nope-key.pem"},
			code: 1, want: []string{"DIR/nope.pem", "no such file"},
		},
		{
			name: "CA is a directory",
			args: []string{"serve", "--dir", "DIR", "--ca-cert", "DIR", "--ca-key", "DIR"},
			code: 1, want: []string{"load CA certificate", "DIR", "is a directory"},
		},
		{
			name: "garbage CA",
			args: []string{"serve", "--dir", "DIR", "--ca-cert", "DIR/bad.pem", "--ca-key", "DIR/bad.pem"},
			setup: func(t *testing.T, dir string) {
				write(t, filepath.Join(dir, "bad.pem"), "not a certificate\n")
			},
			code: 1, want: []string{"DIR/bad.pem"},
		},
		{
			name: "state CA without key",
			args: []string{"serve", "--dir", "DIR"},
			setup: func(t *testing.T, dir string) {
				ca, err := pushsim.NewCA()
				if err != nil {
					t.Fatal(err)
				}
				write(t, filepath.Join(dir, "ca.pem"), string(ca.CertPEM()))
			},
			code: 1, want: []string{"DIR/ca-key.pem", "no such file"},
		},
		{
			name: "garbage TLS certificate",
			args: []string{"serve", "--dir", "DIR", "--tls-cert", "DIR/tls.pem", "--tls-key", "DIR/tls.pem"},
			setup: func(t *testing.T, dir string) {
				write(t, filepath.Join(dir, "tls.pem"), "garbage")
			},
			code: 1, want: []string{"--tls-cert", "DIR/tls.pem"},
		},
		{
			name: "garbage p8",
			args: []string{"serve", "--dir", "DIR"},
			setup: func(t *testing.T, dir string) {
				write(t, filepath.Join(dir, "apns", "AuthKey_BADKEY0001.p8"), "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
			},
			code: 1, want: []string{"load APNs key", "DIR/apns/AuthKey_BADKEY0001.p8"},
		},
		{
			name: "p8 is a directory",
			args: []string{"bearer", "--dir", "DIR"},
			setup: func(t *testing.T, dir string) {
				if err := os.MkdirAll(filepath.Join(dir, "apns", "AuthKey_FOLDER0001.p8"), 0o700); err != nil {
					t.Fatal(err)
				}
			},
			code: 1, want: []string{"DIR/apns/AuthKey_FOLDER0001.p8"},
		},
		{
			name: "garbage service account",
			args: []string{"serve", "--dir", "DIR"},
			setup: func(t *testing.T, dir string) {
				write(t, filepath.Join(dir, "fcm", "p.json"), `{"type": "authorized_user"}`)
			},
			code: 1, want: []string{"load service account", "DIR/fcm/p.json"},
		},
		{
			name: "garbage keys.json",
			args: []string{"serve", "--dir", "DIR"},
			setup: func(t *testing.T, dir string) {
				write(t, filepath.Join(dir, "apns", "keys.json"), `["not", "a", "map"]`)
			},
			code: 1, want: []string{"DIR/apns/keys.json"},
		},
		{
			name: "port in use",
			args: []string{"serve", "--dir", "DIR", "--fcm", busyAddr},
			code: 1, want: []string{"fcm", busyAddr, "address already in use"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if tc.setup != nil {
				tc.setup(t, dir)
			}
			var args []string
			if len(tc.args) > 0 && tc.args[0] == "serve" {
				args = append(args, "serve")
				args = append(args, loopback...)
				args = append(args, tc.args[1:]...)
			} else {
				args = append(args, tc.args...)
			}
			for i, a := range args {
				args[i] = strings.ReplaceAll(a, "DIR", dir)
			}
			r := pushsimRun(t, args...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d; stderr %q", r.code, tc.code, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
			if strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
				t.Fatalf("stderr is not one line:\n%s", r.stderr)
			}
			if !strings.HasPrefix(r.stderr, "pushsim") {
				t.Errorf("error line %q does not say who is speaking", r.stderr)
			}
			for _, w := range tc.want {
				w = strings.ReplaceAll(w, "DIR", dir)
				if !strings.Contains(r.stderr, w) {
					t.Errorf("error line %q lacks %q", r.stderr, w)
				}
			}
			checkNoSecrets(t, r.stderr)
		})
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"pushsim":          "pushsim",
		"data/pushsim":     "data/pushsim",
		"two words":        "'two words'",
		"it's":             `'it'\''s'`,
		"":                 "''",
		"com.example.chat": "com.example.chat",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// The demo is what `make demo` shows a newcomer; it must keep telling the truth.
func TestDemoMeetsEveryExpectedAnswer(t *testing.T) {
	var stdout, stderr strings.Builder
	if code := run([]string{"demo"}, &stdout, &stderr); code != 0 {
		t.Fatalf("demo exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	if strings.Contains(stdout.String(), "UNEXPECTED") || !strings.Contains(stdout.String(), "All 15 pushes met") {
		t.Errorf("demo output:\n%s", stdout.String())
	}
}
