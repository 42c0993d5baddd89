// Demo runs pushd as an operator would, against the provider simulators:
// it starts pushsim and `pushd serve` (SQLite, the embedded default) as
// processes, registers devices and mutes through pushd's HTTP API as an IM
// server would, enqueues messages, and prints what became of each
// recipient. It exits 0 only when every recipient met the expected outcome.
//
// Run it with `make demo` (which first makes sure Redis is running).
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/pushd/pushd/internal/pushsim"
	"github.com/pushd/pushd/scripts/internal/stack"
)

const (
	appID   = "demo"
	topic   = "com.example.chat"
	project = "pushsim-demo"
	seed    = "demo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	work := filepath.Join("data", "demo")
	certs := filepath.Join("certs", appID)
	if err := os.RemoveAll(work); err != nil {
		return err
	}
	step("building pushd and pushsim")
	pushdBin, simBin, err := stack.Build(ctx, filepath.Join(work, "bin"))
	if err != nil {
		return err
	}

	step("starting pushsim (APNs production and development gateways, FCM, OAuth2)")
	sim, err := stack.StartSim(ctx, simBin, work, stack.SimOptions{Seed: seed, Topic: topic, Project: project, DefaultFate: "malformed"})
	if err != nil {
		return err
	}
	defer sim.Stop()

	step("writing credentials to " + certs + "/ and the config to " + work + "/pushd.yaml")
	creds, err := sim.CopyCredentials(certs, project)
	if err != nil {
		return err
	}
	apiToken := rand.Text() // 26 characters, 130 random bits
	listen := stack.FreePort()
	cfg := fmt.Sprintf(`# Written by make demo: pushd against pushsim, SQLite beside Redis.
listen: %s
api_tokens: ["${PUSHD_DEMO_TOKEN}"]
redis: {addr: %q, db: 12}
database: {driver: sqlite, path: pushd.db}
apps:
%s`, listen, stack.RedisAddr(), sim.AppYAML(appID, topic, creds, `    defaults:
      title: "${fromClientId}"
      body: "New message in ${convId}"
`))
	cfgPath := filepath.Join(work, "pushd.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}

	step("starting pushd serve (SQLite at " + work + "/pushd.db, Redis at " + stack.RedisAddr() + ")")
	pushd, err := stack.Start(filepath.Join(work, "pushd.log"), []string{"PUSHD_DEMO_TOKEN=" + apiToken}, pushdBin, "serve", "--config", cfgPath)
	if err != nil {
		return err
	}
	defer pushd.Stop()
	api := &client{stack.Client{Base: "http://" + listen, Token: apiToken}}
	if err := pushd.WaitHTTP(ctx, api.Base+"/readyz"); err != nil {
		return fmt.Errorf("pushd: %w", err)
	}

	m := pushsim.NewMinter(seed)
	type device struct{ id, client, provider, platform, token, env, what string }
	devices := []device{
		{"ana-iphone", "ana", "apns", "", m.APNs(pushsim.FateValid, pushsim.Production, topic, 1), "production", "iPhone, App Store build"},
		{"ben-iphone", "ben", "apns", "", m.APNs(pushsim.FateValid, pushsim.Development, topic, 2), "development", "iPhone, Xcode (development) build"},
		{"cai-pixel", "cai", "fcm", "android", m.FCM(pushsim.FateValid, project, 3), "", "Android phone"},
		{"dan-iphone", "dan", "apns", "", m.APNs(pushsim.FateValid, pushsim.Production, topic, 4), "production", "iPhone; muted the conversation"},
		{"eve-pixel", "eve", "fcm", "android", m.FCM(pushsim.FateValid, project, 5), "", "Android phone; muted, but lets @-mentions through"},
		{"gus-iphone", "gus", "apns", "", m.APNs(pushsim.FateUnregistered, pushsim.Production, topic, 6), "production", "iPhone whose app was deleted (dead token)"},
		{"hal-browser", "hal", "fcm", "web", m.FCM(pushsim.FateValid, project, 7), "", "web browser, through FCM"},
		{"ida-iphone", "ida", "fcm", "ios", m.FCM(pushsim.FateValid, project, 8), "", "iPhone app using Firebase, through FCM"},
	}
	step("registering devices and mutes through the HTTP API")
	for _, d := range devices {
		body := map[string]any{"app_id": appID, "client_id": d.client, "provider": d.provider, "token": d.token}
		if d.platform != "" {
			body["platform"] = d.platform
		}
		if d.env != "" {
			body["apns_env"] = d.env
		}
		if st, b := api.Do(ctx, "PUT", "/v1/installations/"+d.id, body); st != 200 {
			return fmt.Errorf("register %s: %d %s", d.id, st, b)
		}
	}
	for _, mu := range []struct {
		client        string
		allowMentions bool
	}{{"dan", false}, {"eve", true}} {
		if st, b := api.Do(ctx, "PUT", "/v1/mutes/"+mu.client+"/team-chat", map[string]any{"app_id": appID, "allow_mentions": mu.allowMentions}); st != 200 {
			return fmt.Errorf("mute %s: %d %s", mu.client, st, b)
		}
	}

	msgID := "demo-" + time.Now().UTC().Format("20060102T150405.000")
	step("enqueueing message " + msgID + " from zoe to ana, ben, cai, dan, eve (@-mentioned), fay (no device), gus, hal, ida")
	job := map[string]any{
		"app_id": appID, "message_id": msgID, "conversation_id": "team-chat", "from_client_id": "zoe",
		"recipients": []string{"ana", "ben", "cai", "dan", "eve", "fay", "gus", "hal", "ida"}, "mentions": []string{"eve"},
	}
	if st, b := api.Do(ctx, "POST", "/v1/push", job); st != 202 {
		return fmt.Errorf("POST /v1/push: %d %s", st, b)
	}
	if st, _ := api.Do(ctx, "POST", "/v1/push", job); st != 409 {
		return fmt.Errorf("the same message enqueued twice was not refused (status %d)", st)
	}
	trace, err := api.waitTrace(ctx, msgID, 9)
	if err != nil {
		return err
	}

	want := map[string]string{"ana": "delivered", "ben": "delivered", "cai": "delivered", "dan": "muted", "eve": "delivered", "fay": "no_device", "gus": "invalid_token", "hal": "delivered", "ida": "delivered"}
	what := map[string]string{"fay": "no registered device"}
	for _, d := range devices {
		what[d.client] = d.what
	}
	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RECIPIENT\tDEVICE\tOUTCOME\tPROVIDER SAID\tEXPECTED\t")
	wrong := 0
	for _, c := range []string{"ana", "ben", "cai", "dan", "eve", "fay", "gus", "hal", "ida"} {
		row := trace[c]
		mark := "ok"
		if row.Outcome != want[c] {
			mark, wrong = "UNEXPECTED (want "+want[c]+")", wrong+1
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", c, what[c], row.Outcome, row.Reason, mark)
	}
	tw.Flush()

	// What the simulated devices received, from pushsim's control API.
	ctl := pushsim.NewControl(sim.ControlURL())
	fmt.Println("\nAt the simulated devices (pushsim control API):")
	for _, d := range devices {
		rc, ok, err := ctl.Receipt(ctx, d.token)
		if err != nil {
			return err
		}
		if !ok {
			fmt.Printf("  %-11s nothing\n", d.id)
			continue
		}
		fmt.Printf("  %-11s %d push via %s: %s\n", d.id, rc.Count, rc.Listener, summarize(rc.Payload))
	}
	var reg struct {
		Installations []struct {
			Valid         bool   `json:"valid"`
			InvalidReason string `json:"invalid_reason"`
		} `json:"installations"`
	}
	st, b := api.Do(ctx, "GET", "/v1/installations?app_id="+appID+"&client_id=gus", nil)
	if st != 200 || json.Unmarshal(b, &reg) != nil || len(reg.Installations) != 1 {
		return fmt.Errorf("read gus's installation: %d %s", st, b)
	}
	fmt.Printf("\nRegistry: gus's iPhone valid=%v (%s); later pushes skip it.\n", reg.Installations[0].Valid, reg.Installations[0].InvalidReason)
	if reg.Installations[0].Valid {
		wrong++
	}
	_, metrics := api.Do(ctx, "GET", "/metrics", nil)
	fmt.Println("\nDashboards (GET /metrics):")
	for _, line := range strings.Split(string(metrics), "\n") {
		if strings.HasPrefix(line, "pushd_pushes_total") {
			fmt.Println("  " + line)
		}
	}

	step("stopping pushd (SIGTERM drains jobs in flight) and pushsim")
	if err := pushd.Stop(); err != nil {
		return fmt.Errorf("pushd did not stop cleanly: %w (see %s)", err, pushd.LogPath)
	}
	if wrong > 0 {
		return fmt.Errorf("%d recipients met an unexpected outcome; logs in %s", wrong, work)
	}
	fmt.Println("\nEvery recipient met the expected outcome. Logs and state are in " + work + "/.")
	return nil
}

func step(s string) { fmt.Println("==> " + s) }

// client is the IM server's side of pushd's API.
type client struct{ stack.Client }

type traceRow struct {
	InstallationID string `json:"installation_id"`
	ClientID       string `json:"client_id"`
	Outcome        string `json:"outcome"`
	Reason         string `json:"reason"`
}

func (c *client) waitTrace(ctx context.Context, msgID string, want int) (map[string]traceRow, error) {
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, b := c.Do(ctx, "GET", "/v1/messages/"+msgID+"?app_id="+appID, nil)
		var tr struct {
			Deliveries []traceRow `json:"deliveries"`
		}
		if st == 200 && json.Unmarshal(b, &tr) == nil {
			// A device claimed for the attempt shows as retrying until
			// its answer is recorded: wait for every recipient's answer.
			out := make(map[string]traceRow)
			for _, r := range tr.Deliveries {
				if r.Outcome != "retrying" {
					out[r.ClientID] = r
				}
			}
			if len(out) >= want {
				return out, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("message %s: %d of %d recipients traced after 60s: %d %s", msgID, len(tr.Deliveries), want, st, b)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// summarize shows the title and body of an APNs payload or FCM message.
func summarize(payload []byte) string {
	type alert struct {
		Alert struct{ Title, Body string } `json:"alert"`
	}
	var p struct {
		APS          alert                        `json:"aps"`
		Notification struct{ Title, Body string } `json:"notification"`
		// An FCM message to an iPhone or a browser.
		APNs struct {
			Payload struct {
				APS alert `json:"aps"`
			} `json:"payload"`
		} `json:"apns"`
		Webpush struct {
			Notification struct{ Title, Body string } `json:"notification"`
		} `json:"webpush"`
	}
	json.Unmarshal(payload, &p)
	for _, tb := range [][2]string{
		{p.APS.Alert.Title, p.APS.Alert.Body},
		{p.Notification.Title, p.Notification.Body},
		{p.APNs.Payload.APS.Alert.Title, p.APNs.Payload.APS.Alert.Body},
		{p.Webpush.Notification.Title, p.Webpush.Notification.Body},
	} {
		if tb[0] != "" || tb[1] != "" {
			return fmt.Sprintf("%q / %q", tb[0], tb[1])
		}
	}
	return "(no notification)"
}
