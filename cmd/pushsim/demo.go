package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"firebase.google.com/go/v4/messaging"
	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/token"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/pushd/pushd/internal/pushsim"
	"github.com/pushd/pushd/internal/pushsim/simclient"
)

func demoCommand() *command {
	return &command{
		name:  "demo",
		short: "show the simulators answering the real APNs and FCM clients",
		long: `
Demo starts a simulator in this process on free loopback ports, then pushes
through the real clients pushd uses (github.com/sideshow/apns2 with a .p8 key
and with a .p12 certificate, and the Firebase Admin SDK through the OAuth2
service-account flow) to devices of every kind and fate, and prints what each
push met. It exits 0 when every push met the answer Apple or Google would
give, 1 otherwise.`,
		flags: func(fs *flag.FlagSet) func(context.Context, *cli) error {
			seed := fs.String("seed", "demo", "token-minting `seed`")
			return func(ctx context.Context, c *cli) error {
				return runDemo(ctx, c, *seed)
			}
		},
	}
}

const demoTopic = "com.example.chat"

// demoPush is one push of the demo and the answer it should meet.
type demoPush struct {
	client, device string
	want           string
	send           func(ctx context.Context) (string, error)
}

func runDemo(ctx context.Context, c *cli, seed string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	sim, err := pushsim.New(pushsim.Config{Seed: seed})
	if err != nil {
		return err
	}
	if err := sim.Start(); err != nil {
		return err
	}
	defer sim.Close()
	m := sim.Minter()

	key, err := sim.NewAPNsKey("", "")
	if err != nil {
		return err
	}
	// One provider token per key, shared by both gateways' clients, as
	// Apple requires.
	tok := &token.Token{AuthKey: key.Key, KeyID: key.KeyID, TeamID: key.TeamID}
	tokenProd := simclient.APNs(apns2.NewTokenClient(tok), sim, pushsim.Production)
	tokenDev := simclient.APNs(apns2.NewTokenClient(tok), sim, pushsim.Development)
	universal, err := demoCert(sim, pushsim.CertUniversal)
	if err != nil {
		return err
	}
	development, err := demoCert(sim, pushsim.CertDevelopment)
	if err != nil {
		return err
	}
	certDev := simclient.APNs(apns2.NewClient(universal), sim, pushsim.Development)
	certProdVoIP := simclient.APNs(apns2.NewClient(universal), sim, pushsim.Production)
	devCertOnProd := simclient.APNs(apns2.NewClient(development), sim, pushsim.Production)
	sa, err := sim.NewServiceAccount("pushsim-demo")
	if err != nil {
		return err
	}
	saJSON, err := sa.JSON(sim.TokenURL())
	if err != nil {
		return err
	}
	fcmClient, err := simclient.NewFCM(ctx, sim, saJSON, "pushsim-demo")
	if err != nil {
		return err
	}
	fcm := fcmClient.Messaging

	apnsSend := func(cl *apns2.Client, n *apns2.Notification) func(context.Context) (string, error) {
		return func(ctx context.Context) (string, error) {
			resp, err := cl.PushWithContext(ctx, n)
			if err != nil {
				return "", err
			}
			return strings.TrimSpace(fmt.Sprintf("%d %s", resp.StatusCode, resp.Reason)), nil
		}
	}
	alert := func(device string) *apns2.Notification {
		return &apns2.Notification{
			DeviceToken: device, Topic: demoTopic, CollapseID: "msg-1",
			Payload: []byte(`{"aps":{"alert":{"title":"Ada","body":"Lunch at noon?"},"thread-id":"conv-1"}}`),
		}
	}
	voip := alert(m.APNs(pushsim.FateValid, pushsim.Production, demoTopic+".voip", 1))
	voip.Topic, voip.PushType = demoTopic+".voip", apns2.PushTypeVOIP
	fcmSend := func(device string) func(context.Context) (string, error) {
		return func(ctx context.Context) (string, error) {
			_, err := fcm.Send(ctx, &messaging.Message{
				Token:        device,
				Notification: &messaging.Notification{Title: "Ada", Body: "Lunch at noon?"},
				Android:      &messaging.AndroidConfig{Priority: "high", CollapseKey: "conv-1"},
			})
			return fcmOutcome(err), nil
		}
	}

	pushes := []demoPush{
		{"apns2 .p8 key", "iPhone, App Store build", "200", apnsSend(tokenProd, alert(m.APNs(pushsim.FateValid, pushsim.Production, demoTopic, 1)))},
		{"apns2 .p8 key", "iPhone, Xcode build (sandbox)", "200", apnsSend(tokenDev, alert(m.APNs(pushsim.FateValid, pushsim.Development, demoTopic, 2)))},
		{"apns2 .p8 key", "Xcode build sent to production", "400 BadDeviceToken", apnsSend(tokenProd, alert(m.APNs(pushsim.FateValid, pushsim.Development, demoTopic, 2)))},
		{"apns2 .p8 key", "app deleted from the iPhone", "410 Unregistered", apnsSend(tokenProd, alert(m.APNs(pushsim.FateUnregistered, pushsim.Production, demoTopic, 3)))},
		{"apns2 .p8 key", "garbled token", "400 BadDeviceToken", apnsSend(tokenProd, alert(m.APNs(pushsim.FateMalformed, pushsim.Production, demoTopic, 4)))},
		{"apns2 .p8 key", "token of another app", "400 DeviceTokenNotForTopic", apnsSend(tokenProd, alert(m.APNs(pushsim.FateValid, pushsim.Production, "com.example.other", 5)))},
		{"apns2 universal .p12", "iPhone, Xcode build (sandbox)", "200", apnsSend(certDev, alert(m.APNs(pushsim.FateValid, pushsim.Development, demoTopic, 6)))},
		{"apns2 universal .p12", "VoIP call to an iPhone", "200", apnsSend(certProdVoIP, voip)},
		{"apns2 development .p12", "iPhone, App Store build", "403 BadCertificateEnvironment", apnsSend(devCertOnProd, alert(m.APNs(pushsim.FateValid, pushsim.Production, demoTopic, 7)))},
		{"firebase-admin-go", "Android phone", "delivered", fcmSend(m.FCM(pushsim.FateValid, "pushsim-demo", 1))},
		{"firebase-admin-go", "app uninstalled from the phone", "UNREGISTERED", fcmSend(m.FCM(pushsim.FateUnregistered, "pushsim-demo", 2))},
		{"firebase-admin-go", "garbled token", "INVALID_ARGUMENT", fcmSend(m.FCM(pushsim.FateMalformed, "pushsim-demo", 3))},
		{"firebase-admin-go", "token of another Firebase project", "SENDER_ID_MISMATCH", fcmSend(m.FCM(pushsim.FateValid, "other-project", 4))},
	}

	// A maintenance window on the production gateway: the next push meets
	// 503 with Retry-After, the one after it gets through.
	ctl := pushsim.NewControl(sim.ControlURL())
	outage := m.APNs(pushsim.FateValid, pushsim.Production, demoTopic, 8)
	pushes = append(pushes,
		demoPush{"apns2 .p8 key", "iPhone, during a 503 outage", "503 ServiceUnavailable", func(ctx context.Context) (string, error) {
			if _, err := ctl.AddFault(ctx, pushsim.Fault{Kind: pushsim.FaultUnavailable, Listener: pushsim.ListenerAPNsProduction, RetryAfter: 1, Limit: 1}); err != nil {
				return "", err
			}
			return apnsSend(tokenProd, alert(outage))(ctx)
		}},
		demoPush{"apns2 .p8 key", "the same iPhone, retried", "200", apnsSend(tokenProd, alert(outage))},
	)

	fmt.Fprintf(c.stdout, "pushsim demo: real clients against the simulators (APNs %s and %s, FCM %s)\n\n",
		sim.APNsURL(pushsim.Production), sim.APNsURL(pushsim.Development), sim.FCMEndpoint())
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT\tDEVICE\tEXPECTED\tGOT\t")
	var wrong int
	for _, p := range pushes {
		got, err := p.send(ctx)
		if err != nil {
			got = "error: " + err.Error()
		}
		mark := "ok"
		if got != p.want {
			mark = "UNEXPECTED"
			wrong++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.client, p.device, p.want, got, mark)
	}
	tw.Flush()

	counts, err := ctl.Counts(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "\nWhat the simulators counted (control API %s/v1/counts):\n", sim.ControlURL())
	for _, ct := range counts {
		fmt.Fprintf(c.stdout, "  %-17s %3d %-28s %d\n", ct.Listener, ct.Status, ct.Reason, ct.Count)
	}
	if wrong > 0 {
		return fmt.Errorf("demo: %d of %d pushes met an unexpected answer", wrong, len(pushes))
	}
	fmt.Fprintf(c.stdout, "\nAll %d pushes met the answer Apple or Google would give.\n", len(pushes))
	return nil
}

// demoCert issues a certificate and loads it back from a modern .p12, as an
// operator's file would be.
func demoCert(sim *pushsim.Sim, kind pushsim.CertKind) (tls.Certificate, error) {
	cc, err := sim.CA().IssueAPNsCert(pushsim.ClientCertRequest{Kind: kind, BundleID: demoTopic})
	if err != nil {
		return tls.Certificate{}, err
	}
	p12, err := cc.P12(demoP12Password, false)
	if err != nil {
		return tls.Certificate{}, err
	}
	key, leaf, _, err := pkcs12.DecodeChain(p12, demoP12Password)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("demo: decode .p12: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// fcmOutcome names an SDK answer by FCM's error code.
func fcmOutcome(err error) string {
	switch {
	case err == nil:
		return "delivered"
	case messaging.IsUnregistered(err):
		return "UNREGISTERED"
	case messaging.IsSenderIDMismatch(err):
		return "SENDER_ID_MISMATCH"
	case messaging.IsInvalidArgument(err):
		return "INVALID_ARGUMENT"
	case messaging.IsQuotaExceeded(err):
		return "QUOTA_EXCEEDED"
	case messaging.IsUnavailable(err):
		return "UNAVAILABLE"
	case messaging.IsInternal(err):
		return "INTERNAL"
	case messaging.IsThirdPartyAuthError(err):
		return "THIRD_PARTY_AUTH_ERROR"
	}
	return "error: " + err.Error()
}
