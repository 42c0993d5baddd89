package dispatch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/content"
	"github.com/pushd/pushd/internal/dispatch"
	"github.com/pushd/pushd/internal/fcm"
	"github.com/pushd/pushd/internal/installations"
	"github.com/pushd/pushd/internal/mute"
	"github.com/pushd/pushd/internal/pushsim"
	"github.com/pushd/pushd/internal/pushsim/pushsimtest"
	"github.com/pushd/pushd/internal/storage/storagetest"
	"github.com/pushd/pushd/pushjob"
)

const sdkProject = "chat-project"

// sdkWorld is a pipeline on SQLite with the real senders and pushsim as
// Apple and Google.
type sdkWorld struct {
	t   *testing.T
	sim *pushsim.Sim
	reg *installations.Store
	p   *dispatch.Pipeline
}

func newSDKWorld(t *testing.T, parallel int) *sdkWorld {
	t.Helper()
	sim := pushsimtest.Start(t, pushsim.Config{})
	a, f := realSenders(t, sim, sdkProject)
	db := storagetest.SQLite(t)
	w := &sdkWorld{t: t, sim: sim, reg: installations.NewStore(db)}
	p, err := dispatch.New(dispatch.Config{
		// No default content: what a push says comes from its job.
		Apps:  map[string]dispatch.App{"default": {Defaults: content.Defaults{}}},
		Mutes: mute.NewStore(db), Registry: w.reg, Deliveries: installations.NewDeliveries(db),
		Senders: senders(a, f, w.reg, parallel),
	})
	if err != nil {
		t.Fatal(err)
	}
	w.p = p
	return w
}

func (w *sdkWorld) register(id, client string, pf installations.Platform, token string) {
	w.t.Helper()
	in := installations.Installation{ID: id, AppID: "default", ClientID: client, Provider: installations.FCM, Platform: pf, Token: token}
	if _, err := w.reg.Upsert(context.Background(), in); err != nil {
		w.t.Fatalf("register %s: %v", id, err)
	}
}

func (w *sdkWorld) process(job pushjob.Job, first bool) *dispatch.Report {
	w.t.Helper()
	rep, err := w.p.Process(context.Background(), job, false)
	if err != nil {
		w.t.Fatal(err)
	}
	return rep
}

// received is the FCM message pushsim last accepted for token.
type received struct {
	Data         map[string]string `json:"data"`
	Notification *struct {
		Title string `json:"title"`
		Body  string `json:"body"`
	} `json:"notification"`
	Android *struct {
		Priority     string `json:"priority"`
		TTL          string `json:"ttl"`
		CollapseKey  string `json:"collapse_key"`
		Notification *struct {
			Tag               string `json:"tag"`
			ChannelID         string `json:"channel_id"`
			ClickAction       string `json:"click_action"`
			Icon              string `json:"icon"`
			NotificationCount *int   `json:"notification_count"`
		} `json:"notification"`
	} `json:"android"`
	APNs *struct {
		Headers map[string]string `json:"headers"`
		Payload map[string]any    `json:"payload"`
	} `json:"apns"`
	Webpush *struct {
		Headers      map[string]string `json:"headers"`
		Notification map[string]any    `json:"notification"`
		FCMOptions   *struct {
			Link string `json:"link"`
		} `json:"fcm_options"`
	} `json:"webpush"`
}

func (w *sdkWorld) received(token string) (received, int64) {
	w.t.Helper()
	rc, ok := w.sim.Receipt(token)
	if !ok {
		w.t.Fatalf("pushsim has nothing for token %.12s…", token)
	}
	var r received
	if err := json.Unmarshal(rc.Payload, &r); err != nil {
		w.t.Fatalf("receipt payload %s: %v", rc.Payload, err)
	}
	return r, rc.Count
}

// TestProcessFCMThroughSDK sends one job through the real Firebase SDK, the
// service-account flow and pushsim to an Android phone, an iPhone and a
// browser on FCM, and to three dead tokens, then a data-only job; it reads
// back what pushsim received.
func TestProcessFCMThroughSDK(t *testing.T) {
	w := newSDKWorld(t, 0)
	m := w.sim.Minter()
	tokens := map[string]string{
		"ann": m.FCM(pushsim.FateValid, sdkProject, 1),
		"ben": m.FCM(pushsim.FateValid, sdkProject, 2),
		"cat": m.FCM(pushsim.FateValid, sdkProject, 3),
		"dan": m.FCM(pushsim.FateUnregistered, sdkProject, 4),
		"eve": m.FCM(pushsim.FateValid, "another-project", 5),
		"fay": "not-an-fcm-registration-token",
	}
	w.register("android-ann", "ann", installations.PlatformAndroid, tokens["ann"])
	w.register("iphone-ben", "ben", installations.PlatformIOS, tokens["ben"])
	w.register("browser-cat", "cat", installations.PlatformWeb, tokens["cat"])
	w.register("android-dan", "dan", installations.PlatformAndroid, tokens["dan"])
	w.register("android-eve", "eve", installations.PlatformAndroid, tokens["eve"])
	w.register("android-fay", "fay", installations.PlatformAndroid, tokens["fay"])

	job := pushjob.Job{
		MessageID: "msg-1", ConversationID: "conv-1", FromClientID: "zoe",
		Recipients: []string{"ann", "ben", "cat", "dan", "eve", "fay"}, TTLSeconds: 600,
		Push: &pushjob.Content{
			Title: "Zoe", Body: "Lunch at noon?", Badge: &pushjob.Badge{Increment: true}, Data: map[string]any{"n": 3},
			Android: &pushjob.PlatformContent{ChannelID: "messages", ClickAction: "im.chat.OPEN_CONVERSATION", Icon: "ic_stat_chat"},
			Web:     &pushjob.PlatformContent{ClickAction: "https://chat.example.com/c/conv-1", Icon: "https://chat.example.com/icon.png"},
		},
	}
	job.Normalize()
	if err := job.Validate(); err != nil {
		t.Fatal(err)
	}
	rep := w.process(job, true)
	got := outcomes(rep)
	sameMap(t, "report", got, map[string]string{
		"ann/android-ann": "delivered", "ben/iphone-ben": "delivered", "cat/browser-cat": "delivered",
		"dan/android-dan": "invalid_token", "eve/android-eve": "invalid_token", "fay/android-fay": "invalid_token",
	})
	for client, reason := range map[string]string{"dan": "UNREGISTERED", "eve": "SENDER_ID_MISMATCH", "fay": "INVALID_ARGUMENT"} {
		if d := device(t, rep, client, "android-"+client); d.Reason != reason {
			t.Errorf("%s: reason %q, want %q", client, d.Reason, reason)
		}
		list, err := w.reg.ListByClient(context.Background(), "default", client)
		if err != nil || len(list) != 1 || list[0].Valid || list[0].InvalidReason != reason {
			t.Errorf("%s's installation after %s: %+v %v", client, reason, list, err)
		}
	}
	ttl := regexp.MustCompile(`^(59[0-9]|600)s?$`)

	ann, n := w.received(tokens["ann"])
	if n != 1 {
		t.Errorf("ann received %d pushes", n)
	}
	if ann.Notification == nil || ann.Notification.Title != "Zoe" || ann.Notification.Body != "Lunch at noon?" {
		t.Errorf("android notification %+v", ann.Notification)
	}
	if a := ann.Android; a == nil || a.Priority != "high" || !ttl.MatchString(a.TTL) || a.CollapseKey != "" || a.Notification == nil {
		t.Fatalf("android block %+v", a)
	}
	if an := ann.Android.Notification; an.Tag != "msg-1" || an.ChannelID != "messages" || an.ClickAction != "im.chat.OPEN_CONVERSATION" ||
		an.Icon != "ic_stat_chat" || an.NotificationCount == nil || *an.NotificationCount != 1 {
		t.Errorf("android notification block %+v", an)
	}
	if ann.Data["n"] != "3" || ann.Data[fcm.DataConversationID] != "conv-1" || ann.APNs != nil || ann.Webpush != nil {
		t.Errorf("android message: data %v, apns %v, webpush %v", ann.Data, ann.APNs, ann.Webpush)
	}

	ben, _ := w.received(tokens["ben"])
	if ben.APNs == nil || ben.Android != nil || ben.Webpush != nil || ben.Notification != nil || ben.Data != nil {
		t.Fatalf("iOS message has android %v webpush %v notification %v data %v; want the apns block alone", ben.Android, ben.Webpush, ben.Notification, ben.Data)
	}
	h := ben.APNs.Headers
	if h["apns-push-type"] != "alert" || h["apns-priority"] != "10" || h["apns-collapse-id"] != "msg-1" || h["apns-expiration"] == "" {
		t.Errorf("apns headers %v", h)
	}
	aps, _ := ben.APNs.Payload["aps"].(map[string]any)
	alert, _ := aps["alert"].(map[string]any)
	if alert["title"] != "Zoe" || alert["body"] != "Lunch at noon?" || aps["badge"] != 1.0 || aps["thread-id"] != "conv-1" {
		t.Errorf("apns payload aps %v", aps)
	}
	if ben.APNs.Payload["n"] != 3.0 {
		t.Errorf("custom data in the apns payload %v, want n: 3 as a number, as APNs gets it", ben.APNs.Payload)
	}

	cat, _ := w.received(tokens["cat"])
	wp := cat.Webpush
	if wp == nil || cat.Android != nil || cat.APNs != nil || cat.Notification != nil {
		t.Fatalf("web message has webpush %v android %v apns %v", wp, cat.Android, cat.APNs)
	}
	if wp.Headers["Urgency"] != "high" || !ttl.MatchString(wp.Headers["TTL"]) {
		t.Errorf("webpush headers %v", wp.Headers)
	}
	if wn := wp.Notification; wn["title"] != "Zoe" || wn["body"] != "Lunch at noon?" || wn["icon"] != "https://chat.example.com/icon.png" || wn["tag"] != "msg-1" {
		t.Errorf("webpush notification %v", wn)
	}
	if wp.FCMOptions == nil || wp.FCMOptions.Link != "https://chat.example.com/c/conv-1" {
		t.Errorf("webpush fcm_options %+v", wp.FCMOptions)
	}
	if cat.Data["n"] != "3" {
		t.Errorf("web data %v", cat.Data)
	}

	// Data-only: the app's code handles it, nothing shows by itself.
	quiet := pushjob.Job{MessageID: "msg-2", ConversationID: "conv-1", Recipients: []string{"ann", "cat"},
		Push: &pushjob.Content{Data: map[string]any{"sync": "inbox"}}}
	quiet.Normalize()
	sameMap(t, "data-only report", outcomes(w.process(quiet, true)), map[string]string{"ann/android-ann": "delivered", "cat/browser-cat": "delivered"})
	ann, _ = w.received(tokens["ann"])
	if ann.Notification != nil || ann.Android == nil || ann.Android.Notification != nil || ann.Data["sync"] != "inbox" {
		t.Errorf("data-only android message: notification %+v, android %+v, data %v", ann.Notification, ann.Android, ann.Data)
	}
	cat, _ = w.received(tokens["cat"])
	if cat.Webpush == nil || cat.Webpush.Notification != nil || cat.Data["sync"] != "inbox" {
		t.Errorf("data-only web message: webpush %+v, data %v", cat.Webpush, cat.Data)
	}
}

// TestProcessFCMFanOutBounded: one job for 1 200 Android phones, with each
// answer taking 20 ms, is sent with at most the pipeline's bound in flight
// at pushsim; every phone gets it once, and a retry of the job sends only
// to the phones that met a 500.
func TestProcessFCMFanOutBounded(t *testing.T) {
	const n, bound = 1200, 64
	w := newSDKWorld(t, bound)
	m := w.sim.Minter()
	job := pushjob.Job{MessageID: "msg-1", ConversationID: "conv-1", Push: &pushjob.Content{Title: "Zoe", Body: "hi all"}}
	var hurt []string
	for i := range n {
		client := fmt.Sprintf("user-%04d", i)
		tok := m.FCM(pushsim.FateValid, sdkProject, uint64(i))
		w.register("android-"+client, client, installations.PlatformAndroid, tok)
		job.Recipients = append(job.Recipients, client)
		if i%100 == 0 {
			hurt = append(hurt, tok)
		}
	}
	job.Normalize()
	if _, err := w.sim.AddFault(pushsim.Fault{Kind: pushsim.FaultLatency, Listener: pushsim.ListenerFCM, Latency: pushsim.Duration(20 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.sim.AddFault(pushsim.Fault{Kind: pushsim.FaultInternal, Listener: pushsim.ListenerFCM, Tokens: hurt, Limit: int64(len(hurt))}); err != nil {
		t.Fatal(err)
	}

	rep := w.process(job, true)
	if got := rep.Pending(); got != len(hurt) {
		t.Errorf("%d devices pending after the first attempt, want the %d that met a 500", got, len(hurt))
	}
	peak := w.sim.InFlightPeak()[pushsim.ListenerFCM]
	if peak > bound || peak < bound/2 {
		t.Errorf("pushsim saw at most %d sends at once, want no more than the bound %d and near it", peak, bound)
	}
	t.Logf("peak sends in flight at pushsim: %d (bound %d)", peak, bound)
	before := w.sim.Total(pushsim.ListenerFCM, 0, "")
	if rep := w.process(job, false); rep.Pending() != 0 {
		t.Errorf("%d devices pending after the retry", rep.Pending())
	}
	if sent := w.sim.Total(pushsim.ListenerFCM, 0, "") - before; sent != int64(len(hurt)) {
		t.Errorf("the retry sent %d messages, want %d", sent, len(hurt))
	}
	for _, rc := range w.sim.Receipts() {
		if rc.Count != 1 {
			t.Errorf("token %.12s… received %d copies", rc.Token, rc.Count)
		}
	}
	if got := len(w.sim.Receipts()); got != n {
		t.Errorf("%d phones received the message, want %d", got, n)
	}
}
