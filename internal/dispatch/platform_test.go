package dispatch_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"firebase.google.com/go/v4/messaging"

	"github.com/pushd/pushd/internal/dispatch"
	"github.com/pushd/pushd/internal/fcm"
	"github.com/pushd/pushd/internal/installations"
	"github.com/pushd/pushd/internal/outcome"
	"github.com/pushd/pushd/pushjob"
)

// fcmDevice registers an FCM device of platform for client.
func (w *world) fcmDevice(id, client string, pf installations.Platform) string {
	w.t.Helper()
	tok := fcmToken(id)
	w.register(installations.Installation{ID: id, AppID: "default", ClientID: client, Provider: installations.FCM, Platform: pf, Token: tok})
	return tok
}

// TestProcessFCMPlatforms: one job reaches an Android phone, an iPhone
// and a browser through FCM, each in its own shape, and an iPhone through
// APNs; the badge goes to the phones, never to the browser.
func TestProcessFCMPlatforms(t *testing.T) {
	w := newWorld(t)
	droid := w.fcmDevice("android-ann", "ann", installations.PlatformAndroid)
	ifcm := w.fcmDevice("iphone-fcm-ben", "ben", installations.PlatformIOS)
	web := w.fcmDevice("browser-cat", "cat", installations.PlatformWeb)
	direct := w.iphone("iphone-dan", "dan", installations.Production, 1)
	job := newJob("msg-1", "ann", "ben", "cat", "dan")
	job.Push = &pushjob.Content{
		Badge: &pushjob.Badge{Increment: true},
		Data:  map[string]any{"n": 3},
		Web:   &pushjob.PlatformContent{ClickAction: "https://chat.example.com/c/conv-1", Icon: "https://chat.example.com/i.png"},
	}
	rep := w.process(job, true)
	sameMap(t, "report", outcomes(rep), map[string]string{
		"ann/android-ann": "delivered", "ben/iphone-fcm-ben": "delivered", "cat/browser-cat": "delivered", "dan/iphone-dan": "delivered",
	})

	a := w.fcm.to(droid)[0]
	if a.Android == nil || a.APNS != nil || a.Webpush != nil {
		t.Errorf("android message has blocks android %v apns %v webpush %v", a.Android != nil, a.APNS != nil, a.Webpush != nil)
	}
	if n := a.Android.Notification.NotificationCount; n == nil || *n != 1 {
		t.Errorf("android notification count %v, want 1", n)
	}

	i := w.fcm.to(ifcm)[0]
	if i.APNS == nil || i.Android != nil || i.Webpush != nil || i.Data != nil {
		t.Fatalf("iOS-through-FCM message = %+v, want an apns block alone", i)
	}
	if b := i.APNS.Payload.Aps.Badge; b == nil || *b != 1 {
		t.Errorf("iOS badge %v, want 1", b)
	}
	if h := i.APNS.Headers; h["apns-push-type"] != "alert" || h["apns-collapse-id"] != "msg-1" || h["apns-priority"] != "10" {
		t.Errorf("apns headers %v", h)
	}
	// The payload is the one the direct iPhone got, but for its badge.
	viaFCM, _ := json.Marshal(i.APNS.Payload)
	directPayload := w.apns.to(direct)[0].Payload
	if !bytes.Equal(canon(t, viaFCM), canon(t, directPayload)) {
		t.Errorf("apns payload through FCM %s\nwant the direct one   %s", viaFCM, directPayload)
	}

	b := w.fcm.to(web)[0]
	if b.Webpush == nil || b.Android != nil || b.APNS != nil {
		t.Fatalf("web message = %+v, want a webpush block alone", b)
	}
	if b.Webpush.Notification == nil || b.Webpush.Notification.Title != "zoe" || b.Webpush.FCMOptions.Link != "https://chat.example.com/c/conv-1" {
		t.Errorf("webpush = %+v", b.Webpush)
	}
	if b.Data["n"] != "3" {
		t.Errorf("web data %v", b.Data)
	}
	if got := w.installation("cat", "browser-cat").Badge; got != 0 {
		t.Errorf("browser badge counted to %d; a browser shows none", got)
	}
	if got := w.installation("ben", "iphone-fcm-ben").Badge; got != 1 {
		t.Errorf("iPhone-through-FCM badge %d, want 1", got)
	}
}

// canon re-encodes JSON with sorted keys.
func canon(t *testing.T, b []byte) []byte {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	out, _ := json.Marshal(v)
	return out
}

// TestProcessFCMIOSPushTypeRefused: FCM carries alert and background
// pushes to iOS, not VoIP: the FCM iPhone is rejected with the reason,
// nothing is sent to it, and the other devices are pushed.
func TestProcessFCMIOSPushTypeRefused(t *testing.T) {
	w := newWorld(t, withAppTopic("im.chat"))
	ifcm := w.fcmDevice("iphone-fcm-ben", "ben", installations.PlatformIOS)
	w.register(installations.Installation{ID: "iphone-dan", AppID: "default", ClientID: "dan", Provider: installations.APNs, Token: apnsToken(1), APNsTopic: "im.chat.voip"})
	job := newJob("msg-1", "ben", "dan")
	job.Push = &pushjob.Content{IOS: &pushjob.PlatformContent{PushType: pushjob.PushTypeVoIP}}
	rep := w.process(job, true)
	sameMap(t, "report", outcomes(rep), map[string]string{"ben/iphone-fcm-ben": "rejected", "dan/iphone-dan": "delivered"})
	if d := device(t, rep, "ben", "iphone-fcm-ben"); !strings.Contains(d.Reason, `"voip" cannot go through FCM`) {
		t.Errorf("reason %q", d.Reason)
	}
	if n := len(w.fcm.to(ifcm)); n != 0 {
		t.Errorf("%d messages sent to the FCM iPhone", n)
	}
	if in := w.installation("ben", "iphone-fcm-ben"); !in.Valid {
		t.Error("the token was blamed for the job's push type")
	}
}

// TestProcessCollapse: a job that asks for it replaces its conversation's
// earlier notification on every platform.
func TestProcessCollapse(t *testing.T) {
	w := newWorld(t)
	droid := w.android("android-ann", "ann")
	web := w.fcmDevice("browser-cat", "cat", installations.PlatformWeb)
	direct := w.iphone("iphone-dan", "dan", installations.Production, 1)
	job := newJob("msg-1", "ann", "cat", "dan")
	job.Push = &pushjob.Content{Collapse: true}
	w.process(job, true)
	if a := w.fcm.to(droid)[0].Android; a.CollapseKey != job.ConversationID || a.Notification.Tag != job.ConversationID {
		t.Errorf("android collapse key %q tag %q, want %q", a.CollapseKey, a.Notification.Tag, job.ConversationID)
	}
	if tag := w.fcm.to(web)[0].Webpush.Notification.Tag; tag != job.ConversationID {
		t.Errorf("web tag %q", tag)
	}
	if id := w.apns.to(direct)[0].CollapseID; id != job.ConversationID {
		t.Errorf("apns-collapse-id %q", id)
	}
}

// TestProcessLogsRefusalsOncePerReason: a content bug FCM refuses for
// every device is one log line naming the field, not one per device.
func TestProcessLogsRefusalsOncePerReason(t *testing.T) {
	var logs bytes.Buffer
	w := newWorld(t, withConfig(func(c *dispatch.Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) }))
	var clients []string
	for _, c := range []string{"a", "b", "c", "d"} {
		w.android("android-"+c, c)
		clients = append(clients, c)
	}
	w.fcm.answer = func(m *messaging.Message, n int) fcm.Result {
		return fcm.Result{Outcome: outcome.Rejected, Code: "INVALID_ARGUMENT", Field: "message.android.notification.color"}
	}
	rep := w.process(newJob("msg-1", clients...), true)
	if d := device(t, rep, "a", "android-a"); d.Reason != "INVALID_ARGUMENT message.android.notification.color" {
		t.Errorf("reason %q, want the code and the field", d.Reason)
	}
	if n := strings.Count(logs.String(), "push refused"); n != 1 {
		t.Errorf("%d log lines for one refusal:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "devices=4") || !strings.Contains(logs.String(), "message.android.notification.color") {
		t.Errorf("log %q lacks the count or the field", logs.String())
	}
	if strings.Contains(logs.String(), fcmToken("android-a")) {
		t.Error("the log holds a device token")
	}
}
