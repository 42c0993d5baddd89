package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/pushd/pushd/internal/pushsim"
)

type serveOptions struct {
	dir             string
	apnsProduction  string
	apnsDevelopment string
	fcm             string
	control         string
	seed            string
	defaultFate     string
	teamID          string
	caCert, caKey   string
	tlsCert, tlsKey string
	project         string
	topic           string
	maxStreams      int
	tokenInterval   time.Duration
	logLevel        string
}

func serveCommand() *command {
	return &command{
		name:  "serve",
		args:  "[flags]",
		short: "run the simulator until interrupted",
		long: `
Serve runs the APNs production and development gateways, the FCM HTTP v1 API
with its OAuth2 token endpoint, and the control API, until SIGINT or SIGTERM.

The first start in an empty --dir makes a CA, an APNs token signing key,
development, production and universal APNs certificates for --topic (.pem and
.p12 with password "pushsim"), and a service account key file for --project.
Later starts reuse them, adding only what is missing; delete a file to have it
made afresh. Every fcm/*.json there is loaded, and its token_uri rewritten
when it does not name this start's --fcm address. The listeners' TLS
certificate is issued from the CA at each start.

Once listening, serve prints where everything is, then logs "ready".`,
		flags: func(fs *flag.FlagSet) func(context.Context, *cli) error {
			var o serveOptions
			fs.StringVar(&o.dir, "dir", defaultDir, "state `directory` for the CA, keys, certificates and service accounts")
			fs.StringVar(&o.apnsProduction, "apns-production", "127.0.0.1:2197", "listen `address` of the APNs production gateway")
			fs.StringVar(&o.apnsDevelopment, "apns-development", "127.0.0.1:2198", "listen `address` of the APNs development (sandbox) gateway")
			fs.StringVar(&o.fcm, "fcm", "127.0.0.1:2199", "listen `address` of the FCM API and OAuth2 token endpoint")
			fs.StringVar(&o.control, "control", "127.0.0.1:2196", "listen `address` of the control API (plain HTTP)")
			fs.StringVar(&o.seed, "seed", "pushsim", "device token `seed`; 'pushsim mint' must use the same")
			fs.StringVar(&o.defaultFate, "default-fate", "valid", "`fate` of well-formed tokens the seed did not mint: valid, unregistered or malformed")
			fs.StringVar(&o.teamID, "team-id", pushsim.DefaultTeamID, "Apple team `id` of new keys and certificates, and of keys keys.json does not list")
			fs.StringVar(&o.caCert, "ca-cert", "", "CA certificate `file` to use instead of the state directory's (needs --ca-key)")
			fs.StringVar(&o.caKey, "ca-key", "", "CA private key `file` to use instead of the state directory's")
			fs.StringVar(&o.tlsCert, "tls-cert", "", "listeners' certificate `file`, instead of one issued by the CA (needs --tls-key)")
			fs.StringVar(&o.tlsKey, "tls-key", "", "private key `file` of --tls-cert")
			fs.StringVar(&o.project, "project", "pushsim-demo", "FCM `project` to make a service account for when there is none")
			fs.StringVar(&o.topic, "topic", "com.example.chat", "bundle `id` of the APNs certificates made on first start")
			fs.IntVar(&o.maxStreams, "max-streams", 1000, "`number` of concurrent HTTP/2 streams the APNs gateways allow a connection (SETTINGS_MAX_CONCURRENT_STREAMS)")
			fs.DurationVar(&o.tokenInterval, "provider-token-interval", 20*time.Minute, "least `time` between two new APNs provider tokens of one key, as Apple enforces;\n0 accepts a new token at any time (benchmarks whose clients each sign their own)")
			fs.StringVar(&o.logLevel, "log-level", "info", "least `level` logged to stderr: debug, info, warn or error")
			return func(ctx context.Context, c *cli) error { return c.serve(ctx, &o) }
		},
	}
}

// serveConfig is what serve's flags say once checked.
type serveConfig struct {
	fate  pushsim.Fate
	level slog.Level
}

func (o *serveOptions) check() (serveConfig, error) {
	var sc serveConfig
	for _, a := range []struct{ flag, addr string }{
		{"apns-production", o.apnsProduction},
		{"apns-development", o.apnsDevelopment},
		{"fcm", o.fcm},
		{"control", o.control},
	} {
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			return sc, usageErrorf("--%s %q: want host:port: %v", a.flag, a.addr, unwrapAddrError(err))
		}
	}
	fate, err := pushsim.ParseFate(o.defaultFate)
	if err != nil {
		return sc, usageErrorf("--default-fate %q: want valid, unregistered or malformed", o.defaultFate)
	}
	sc.fate = fate
	if err := sc.level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return sc, usageErrorf("--log-level %q: want debug, info, warn or error", o.logLevel)
	}
	switch {
	case o.dir == "":
		return sc, usageErrorf("--dir must not be empty")
	case o.seed == "":
		// The simulator would take an empty seed for its default, and
		// tokens minted with "" would then meet the wrong fates.
		return sc, usageErrorf("--seed must not be empty")
	case o.teamID == "":
		return sc, usageErrorf("--team-id must not be empty")
	case o.topic == "":
		return sc, usageErrorf("--topic must not be empty")
	case !validName(o.project):
		return sc, usageErrorf("--project %q: want a project id, which names a file", o.project)
	case o.maxStreams < 1:
		return sc, usageErrorf("--max-streams %d: want at least 1", o.maxStreams)
	case o.tokenInterval < 0:
		return sc, usageErrorf("--provider-token-interval %v: want 0 or more", o.tokenInterval)
	case (o.caCert == "") != (o.caKey == ""):
		return sc, usageErrorf("--ca-cert and --ca-key go together")
	case (o.tlsCert == "") != (o.tlsKey == ""):
		return sc, usageErrorf("--tls-cert and --tls-key go together")
	}
	return sc, nil
}

// unwrapAddrError drops net.AddrError's repetition of the address.
func unwrapAddrError(err error) string {
	if ae, ok := err.(*net.AddrError); ok {
		return ae.Err
	}
	return err.Error()
}

func (c *cli) serve(ctx context.Context, o *serveOptions) error {
	sc, err := o.check()
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: sc.level}))
	d := stateDir(o.dir)

	// Read everything before making anything, so that a bad file stops the
	// start before it has written half a state directory.
	var (
		ca        *pushsim.CA
		caCreated bool
		caPath    = o.caCert
	)
	if o.caCert != "" {
		ca, err = loadCA(o.caCert, o.caKey)
	} else {
		caPath = d.caCertPath()
		ca, caCreated, err = d.ensureCA()
	}
	if err != nil {
		return err
	}
	keys, err := d.loadAPNsKeys(o.teamID)
	if err != nil {
		return err
	}
	accounts, err := d.loadAccounts()
	if err != nil {
		return err
	}
	certs, err := d.loadCerts(ca)
	if err != nil {
		return err
	}
	var serverCert tls.Certificate
	if o.tlsCert != "" {
		serverCert, err = loadKeyPair(o.tlsCert, o.tlsKey)
	} else {
		serverCert, err = ca.ServerCert(certHosts(o.apnsProduction, o.apnsDevelopment, o.fcm)...)
	}
	if err != nil {
		return err
	}

	sim, err := pushsim.New(pushsim.Config{
		Seed:                 o.seed,
		DefaultFate:          sc.fate,
		CA:                   ca,
		ServerCert:           &serverCert,
		APNsProductionAddr:   o.apnsProduction,
		APNsDevelopmentAddr:  o.apnsDevelopment,
		FCMAddr:              o.fcm,
		ControlAddr:          o.control,
		MaxConcurrentStreams: o.maxStreams,
		// The config's zero is Apple's interval; the flag's zero is none.
		ProviderTokenInterval: cmp.Or(o.tokenInterval, -1),
		Logger:                log,
	})
	if err != nil {
		return err
	}
	// Listen before the slow part (RSA keys), so a port in use fails fast,
	// and because service account files must name the bound token URL.
	if err := sim.Start(); err != nil {
		return err
	}
	defer sim.Close()

	if len(keys) == 0 {
		k, err := pushsim.GenerateAPNsKey("", o.teamID)
		if err != nil {
			return err
		}
		path, err := d.writeAPNsKey(k)
		if err != nil {
			return err
		}
		keys = append(keys, keyFile{path: path, key: k, created: true})
	}
	for _, k := range keys {
		if err := sim.AddAPNsKey(k.key.KeyID, k.key.TeamID, &k.key.Key.PublicKey); err != nil {
			return fmt.Errorf("register APNs key %s: %w", k.path, err)
		}
	}

	made, err := d.ensureCerts(ca, o.topic, o.teamID)
	if err != nil {
		return err
	}
	certs = append(certs, made...)
	slices.SortFunc(certs, func(a, b certFile) int { return cmp.Compare(a.path, b.path) })

	if !slices.ContainsFunc(accounts, func(a accountFile) bool { return a.sa.ProjectID == o.project }) {
		path := d.accountPath(o.project)
		if ok, err := exists(path); err != nil {
			return err
		} else if ok {
			return fmt.Errorf("service account %s is not for project %q; move it aside or pick another --project", path, o.project)
		}
		sa, err := pushsim.GenerateServiceAccount(o.project)
		if err != nil {
			return err
		}
		if err := writeAccount(path, sa, sim.TokenURL()); err != nil {
			return err
		}
		accounts = append(accounts, accountFile{path: path, sa: sa, tokenURI: sim.TokenURL(), created: true})
		slices.SortFunc(accounts, func(a, b accountFile) int { return cmp.Compare(a.path, b.path) })
	}
	for i := range accounts {
		a := &accounts[i]
		// The Firebase SDK fetches access tokens from the file's token_uri,
		// so it must name this run's listener.
		if a.tokenURI != sim.TokenURL() {
			if err := rewriteTokenURI(a.path, sim.TokenURL()); err != nil {
				return err
			}
			log.Info("rewrote service account token_uri", "file", a.path, "was", a.tokenURI, "now", sim.TokenURL())
			a.tokenURI = sim.TokenURL()
		}
		if err := sim.AddServiceAccount(a.sa); err != nil {
			return fmt.Errorf("register service account %s: %w", a.path, err)
		}
	}

	c.printSummary(summary{
		o:        o,
		sim:      sim,
		caPath:   caPath,
		caNew:    caCreated,
		keys:     keys,
		certs:    certs,
		accounts: accounts,
	})
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info("ready",
		"apns_production", sim.APNsURL(pushsim.Production),
		"apns_development", sim.APNsURL(pushsim.Development),
		"fcm", sim.FCMURL(),
		"control", sim.ControlURL())
	if c.started != nil {
		c.started(sim)
	}
	<-ctx.Done()
	log.Info("shutting down")
	if err := sim.Close(); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	return nil
}

// loadKeyPair reads a TLS certificate and key, naming the file at fault.
func loadKeyPair(certPath, keyPath string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load --tls-cert: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load --tls-key: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load --tls-cert %s, --tls-key %s: %w", certPath, keyPath, err)
	}
	return pair, nil
}

// certHosts lists the names the listeners' certificate needs beyond the
// loopback ones it always has: the hosts they listen on and, when they
// listen on every interface, this machine's name.
func certHosts(addrs ...string) []string {
	var hosts []string
	wildcard := false
	for _, a := range addrs {
		h, _, _ := net.SplitHostPort(a)
		ip := net.ParseIP(h)
		switch {
		case h == "":
			// Go listens on both families and reports [::].
			wildcard = true
			hosts = append(hosts, "::")
		case ip != nil && ip.IsLoopback(), h == "localhost":
		default:
			wildcard = wildcard || ip != nil && ip.IsUnspecified()
			hosts = append(hosts, h)
		}
	}
	if wildcard {
		if name, err := os.Hostname(); err == nil {
			hosts = append(hosts, name)
		}
	}
	slices.Sort(hosts)
	return slices.Compact(hosts)
}

type summary struct {
	o        *serveOptions
	sim      *pushsim.Sim
	caPath   string
	caNew    bool
	keys     []keyFile
	certs    []certFile
	accounts []accountFile
}

// printSummary tells the operator what to point senders at; it is the
// simulator's whole configuration story, so it leaves nothing to look up.
func (c *cli) printSummary(s summary) {
	w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	sim, o := s.sim, s.o
	fmt.Fprintf(w, "pushsim is serving; state directory %s\n\n", o.dir)
	fmt.Fprintf(w, "  APNs production\t%s\n", sim.APNsURL(pushsim.Production))
	fmt.Fprintf(w, "  APNs development\t%s\n", sim.APNsURL(pushsim.Development))
	fmt.Fprintf(w, "  FCM\t%s\t(SDK endpoint %s, OAuth2 token URL %s)\n", sim.FCMURL(), sim.FCMEndpoint(), sim.TokenURL())
	fmt.Fprintf(w, "  control\t%s\n", sim.ControlURL())
	fmt.Fprintln(w)
	if o.tlsCert != "" {
		fmt.Fprintf(w, "  server certificate\t%s\t(clients must trust its issuer)\n", o.tlsCert)
		fmt.Fprintf(w, "  client certificate CA\t%s\t(APNs certificates must be issued by it)\n", s.caPath)
	} else {
		fmt.Fprintf(w, "  CA\t%s\t(clients must trust it%s)\n", s.caPath, createdNote(s.caNew, "; "))
	}
	fmt.Fprintf(w, "  seed\t%s\t(tokens it did not mint are %s)\n", o.seed, o.defaultFate)

	fmt.Fprint(w, "\nAPNs token signing keys:\n")
	for _, k := range s.keys {
		fmt.Fprintf(w, "  %s\tkey id %s\tteam id %s%s\n", k.path, k.key.KeyID, k.key.TeamID, createdNote(k.created, "\t"))
	}

	fmt.Fprint(w, "\nAPNs certificates (certificate chain and key as PEM, and a .p12 beside it):\n")
	if len(s.certs) == 0 {
		fmt.Fprintln(w, "  none")
	}
	now := time.Now()
	for _, cf := range s.certs {
		kind, topic := describeCert(cf.cert)
		p12 := "no .p12"
		switch {
		case cf.p12 != "" && cf.demoPassword:
			p12 = fmt.Sprintf(".p12 password %q", demoP12Password)
		case cf.p12 != "":
			p12 = ".p12 password not the default"
		}
		note := createdNote(cf.created, "\t")
		if cf.foreign {
			note = "\tnot issued by this CA: refused"
		}
		fmt.Fprintf(w, "  %s\t%s\ttopic %s\t%s\t%s%s\n", cf.path, kind, topic, validity(cf.cert, now), p12, note)
	}

	fmt.Fprint(w, "\nFCM service accounts:\n")
	for _, a := range s.accounts {
		fmt.Fprintf(w, "  %s\tproject %s\t%s%s\n", a.path, a.sa.ProjectID, a.sa.ClientEmail, createdNote(a.created, "\t"))
	}

	fmt.Fprint(w, "\nDevice tokens and provider tokens:\n")
	fmt.Fprintf(w, "  pushsim mint --seed %s --provider apns --env development --topic %s --fate valid -n 3\n", shellQuote(o.seed), shellQuote(o.topic))
	project := o.project
	if len(s.accounts) > 0 && !slices.ContainsFunc(s.accounts, func(a accountFile) bool { return a.sa.ProjectID == project }) {
		project = s.accounts[0].sa.ProjectID
	}
	fmt.Fprintf(w, "  pushsim mint --seed %s --provider fcm --project %s --fate unregistered -n 3\n", shellQuote(o.seed), shellQuote(project))
	fmt.Fprintf(w, "  pushsim bearer --dir %s\n", shellQuote(o.dir))
	fmt.Fprintln(w)
	w.Flush()
}

func createdNote(created bool, sep string) string {
	if created {
		return sep + "created"
	}
	return ""
}

// shellQuote quotes s for a POSIX shell when it needs it, so the printed
// example commands can be pasted.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@%+=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
