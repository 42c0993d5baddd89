// Package stack runs pushd as an operator would, for the demo and the
// benchmark harness: the binaries built from this checkout, pushsim and
// `pushd serve` as child processes with their output in log files, and a
// client of pushd's HTTP API.
package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pushd/pushd/internal/pushsim"
)

// Build compiles pushd and pushsim into dir and returns their paths.
func Build(ctx context.Context, dir string) (pushd, sim string, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	for _, b := range []string{"pushd", "pushsim"} {
		c := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, b), "./cmd/"+b)
		c.Stdout, c.Stderr = os.Stderr, os.Stderr
		if err := c.Run(); err != nil {
			return "", "", fmt.Errorf("go build ./cmd/%s: %w", b, err)
		}
	}
	return filepath.Join(dir, "pushd"), filepath.Join(dir, "pushsim"), nil
}

// RedisAddr is PUSHD_REDIS_ADDR, or Redis's default address.
func RedisAddr() string {
	if a := os.Getenv("PUSHD_REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// FreePort returns a loopback address nothing listens on now.
func FreePort() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Proc is a child process whose output goes to a log file.
type Proc struct {
	cmd     *exec.Cmd
	LogPath string
	exited  chan error
	stopped bool
}

// Start starts name with args, env added to this process's environment.
func Start(logPath string, env []string, name string, args ...string) (*Proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	p := &Proc{cmd: exec.Command(name, args...), LogPath: logPath, exited: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.Env = append(os.Environ(), env...)
	if err := p.cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.exited <- p.cmd.Wait()
		f.Close()
	}()
	return p, nil
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Stop sends SIGTERM and waits for a clean exit.
func (p *Proc) Stop() error {
	if p.stopped {
		return nil
	}
	p.stopped = true
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		return err
	case <-time.After(40 * time.Second):
		p.cmd.Process.Kill()
		return errors.New("did not exit within 40s of SIGTERM")
	}
}

// WaitLog waits for text to appear in p's log.
func (p *Proc) WaitLog(ctx context.Context, text string) error {
	return p.waitReady(ctx, func() bool {
		b, _ := os.ReadFile(p.LogPath)
		return bytes.Contains(b, []byte(text))
	})
}

// WaitHTTP waits for url to answer 200.
func (p *Proc) WaitHTTP(ctx context.Context, url string) error {
	return p.waitReady(ctx, func() bool {
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// waitReady polls ready for up to a minute, giving up with p's log when p
// exits first.
func (p *Proc) waitReady(ctx context.Context, ready func() bool) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if ready() {
			return nil
		}
		select {
		case err := <-p.exited:
			log, _ := os.ReadFile(p.LogPath)
			return fmt.Errorf("exited (%v) before it was ready:\n%s", err, log)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	log, _ := os.ReadFile(p.LogPath)
	return fmt.Errorf("not ready after 60s:\n%s", log)
}

// Sim is a running `pushsim serve`.
type Sim struct {
	*Proc
	Dir string
	// Listen addresses (host:port).
	APNsProduction, APNsDevelopment, FCM, Control string
}

// SimOptions are what a run sets of pushsim's flags.
type SimOptions struct {
	Seed, Topic, Project string
	// DefaultFate is the fate of tokens the seed did not mint.
	DefaultFate string
	// Args are further flags.
	Args []string
}

// StartSim starts pushsim with its state in dir and waits until it is
// ready.
func StartSim(ctx context.Context, bin, dir string, o SimOptions) (*Sim, error) {
	s := &Sim{Dir: dir, APNsProduction: FreePort(), APNsDevelopment: FreePort(), FCM: FreePort(), Control: FreePort()}
	args := []string{"serve", "--dir", filepath.Join(dir, "pushsim"), "--seed", o.Seed, "--topic", o.Topic, "--project", o.Project,
		"--apns-production", s.APNsProduction, "--apns-development", s.APNsDevelopment, "--fcm", s.FCM, "--control", s.Control}
	if o.DefaultFate != "" {
		args = append(args, "--default-fate", o.DefaultFate)
	}
	p, err := Start(filepath.Join(dir, "pushsim.log"), nil, bin, append(args, o.Args...)...)
	if err != nil {
		return nil, err
	}
	s.Proc = p
	// pushsim listens before it has made its keys and accounts, and says
	// "ready" once they are written.
	if err := p.WaitLog(ctx, "msg=ready"); err != nil {
		p.Stop()
		return nil, fmt.Errorf("pushsim: %w", err)
	}
	return s, nil
}

// ControlURL is the base URL of pushsim's control API.
func (s *Sim) ControlURL() string { return "http://" + s.Control }

// Credentials are the files an app's config names, copied from pushsim's
// state to where an operator's would go.
type Credentials struct {
	KeyFile, KeyID, TeamID string
	ServiceAccount, CA     string
}

// CopyCredentials puts pushsim's test credentials for project in the app's
// folder certs.
func (s *Sim) CopyCredentials(certs, project string) (Credentials, error) {
	simDir := filepath.Join(s.Dir, "pushsim")
	keys, err := filepath.Glob(filepath.Join(simDir, "apns", "AuthKey_*.p8"))
	if err != nil || len(keys) != 1 {
		return Credentials{}, fmt.Errorf("want one APNs key in %s/apns, found %d", simDir, len(keys))
	}
	if err := os.MkdirAll(certs, 0o700); err != nil {
		return Credentials{}, err
	}
	c := Credentials{
		KeyFile:        filepath.Join(certs, filepath.Base(keys[0])),
		KeyID:          strings.TrimSuffix(strings.TrimPrefix(filepath.Base(keys[0]), "AuthKey_"), ".p8"),
		TeamID:         pushsim.DefaultTeamID,
		ServiceAccount: filepath.Join(certs, "fcm-service-account.json"),
		CA:             filepath.Join(certs, "pushsim-ca.pem"),
	}
	old, _ := filepath.Glob(filepath.Join(certs, "AuthKey_*.p8"))
	for _, o := range old {
		os.Remove(o)
	}
	for from, to := range map[string]string{
		keys[0]: c.KeyFile,
		filepath.Join(simDir, "fcm", project+".json"): c.ServiceAccount,
		filepath.Join(simDir, "ca.pem"):               c.CA,
	} {
		b, err := os.ReadFile(from)
		if err != nil {
			return Credentials{}, err
		}
		if err := os.WriteFile(to, b, 0o600); err != nil {
			return Credentials{}, err
		}
	}
	return c, nil
}

// Client calls pushd's HTTP API with a bearer token.
type Client struct {
	Base, Token string
	HTTP        *http.Client
}

// Do sends body as JSON and returns the status and the answer's body; a
// transport error is status 0 with the error as the body.
func (c *Client) Do(ctx context.Context, method, path string, body any) (int, []byte) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(ctx, method, c.Base+path, rd)
	req.Header.Set("Authorization", "Bearer "+c.Token)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// AppYAML is the config of app id served by s with credentials c, as an
// item of pushd's `apps:` list, indented for it. defaults is the app's
// `defaults:` block, already indented, or "".
func (s *Sim) AppYAML(id, topic string, c Credentials, defaults string) string {
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			return p
		}
		return a
	}
	return fmt.Sprintf(`  - id: %s
    apns:
      key_file: %s
      key_id: %s
      team_id: %s
      topic: %s
      production_url: https://%s
      development_url: https://%s
      ca_file: %s
    fcm:
      credentials_file: %s
      endpoint: https://%s/v1
      ca_file: %s
%s`, id, abs(c.KeyFile), c.KeyID, c.TeamID, topic, s.APNsProduction, s.APNsDevelopment, abs(c.CA),
		abs(c.ServiceAccount), s.FCM, abs(c.CA), defaults)
}
