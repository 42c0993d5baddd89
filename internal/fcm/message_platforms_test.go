package fcm

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"firebase.google.com/go/v4/messaging"

	"github.com/pushd/pushd/internal/apns"
	"github.com/pushd/pushd/internal/content"
	"github.com/pushd/pushd/pushjob"
)

// wire is a message as the SDK puts it on the wire, decoded.
func wire(t *testing.T, m *messaging.Message) map[string]any {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestFCMAndroidOptions(t *testing.T) {
	p := content.Platform{
		ChannelID: "messages", Sound: "ping", Icon: "ic_stat_chat", ClickAction: "im.chat.OPEN",
		LocKey: "new_message", LocArgs: []string{"Ada"}, TitleLocKey: "chat_title", TitleLocArgs: []string{"Team"},
	}
	// Localized keys alone make a notification: the device fills in the text.
	m := NewAndroidTemplate(p, testJob(), sent).Message("tok", nil)
	if m.Notification != nil {
		t.Errorf("notification = %+v, want none: the text comes from the keys", m.Notification)
	}
	n := m.Android.Notification
	if n == nil {
		t.Fatal("no android notification")
	}
	if n.Icon != "ic_stat_chat" || n.ClickAction != "im.chat.OPEN" || n.ChannelID != "messages" || n.Sound != "ping" {
		t.Errorf("android notification = %+v", n)
	}
	if n.BodyLocKey != "new_message" || !slices.Equal(n.BodyLocArgs, []string{"Ada"}) || n.TitleLocKey != "chat_title" || !slices.Equal(n.TitleLocArgs, []string{"Team"}) {
		t.Errorf("localization = %q %q %q %q", n.BodyLocKey, n.BodyLocArgs, n.TitleLocKey, n.TitleLocArgs)
	}
	an := wire(t, m)["android"].(map[string]any)["notification"].(map[string]any)
	for k, v := range map[string]any{"body_loc_key": "new_message", "title_loc_key": "chat_title", "click_action": "im.chat.OPEN", "icon": "ic_stat_chat", "channel_id": "messages"} {
		if an[k] != v {
			t.Errorf("wire android.notification.%s = %v, want %v", k, an[k], v)
		}
	}
}

func TestFCMCollapse(t *testing.T) {
	j := testJob()
	j.Push = &pushjob.Content{Collapse: true}
	m := NewAndroidTemplate(content.Platform{Title: "t", Body: "b"}, j, sent).Message("tok", nil)
	if m.Android.CollapseKey != "conv-1" || m.Android.Notification.Tag != "conv-1" {
		t.Errorf("collapse key %q, tag %q; want the conversation", m.Android.CollapseKey, m.Android.Notification.Tag)
	}
	if id := apns.CollapseID(j); id != "conv-1" {
		t.Errorf("CollapseID = %q, want the conversation", id)
	}
	w := NewWebTemplate(content.Platform{Title: "t"}, j, sent).Message("tok", nil)
	if w.Webpush.Notification.Tag != "conv-1" {
		t.Errorf("web tag %q, want the conversation", w.Webpush.Notification.Tag)
	}

	j.Push.Collapse = false
	if id := apns.CollapseID(j); id != "m1" {
		t.Errorf("CollapseID = %q, want the message id", id)
	}
	j.MessageID = strings.Repeat("m", 65)
	if id := apns.CollapseID(j); len(id) != 64 || id == j.MessageID[:64] {
		t.Errorf("CollapseID of a 65-byte id = %q: want a 64-byte hash, not a cut", id)
	}
}

func TestFCMWeb(t *testing.T) {
	j := testJob()
	j.TTLSeconds = 60
	p := content.Platform{Title: "Ada", Body: "hi", Icon: "https://chat.example.com/i.png", ClickAction: "https://chat.example.com/c/conv-1",
		Data: map[string]any{"n": 3}}
	m := NewWebTemplate(p, j, sent.Add(2*time.Second)).Message("tok", intp(9))
	if m.Token != "tok" || m.Android != nil || m.APNS != nil || m.Notification != nil {
		t.Errorf("message = %+v, want only a webpush block", m)
	}
	w := m.Webpush
	if w.Notification == nil || w.Notification.Title != "Ada" || w.Notification.Body != "hi" || w.Notification.Icon != p.Icon || w.Notification.Tag != "m1" {
		t.Errorf("webpush notification = %+v", w.Notification)
	}
	if w.FCMOptions == nil || w.FCMOptions.Link != p.ClickAction {
		t.Errorf("fcm_options = %+v, want the click action as link", w.FCMOptions)
	}
	if !maps.Equal(w.Headers, map[string]string{"Urgency": "high", "TTL": "58"}) {
		t.Errorf("headers = %v", w.Headers)
	}
	if !maps.Equal(m.Data, map[string]string{"n": "3", DataConversationID: "conv-1"}) {
		t.Errorf("data = %v", m.Data)
	}

	j.Priority = pushjob.PriorityLow
	j.TTLSeconds = 0
	d := NewWebTemplate(content.Platform{Data: map[string]any{"k": "v"}}, j, sent).Message("tok", nil)
	if d.Webpush.Notification != nil || d.Webpush.FCMOptions != nil {
		t.Errorf("data-only web message has %+v", d.Webpush)
	}
	if !maps.Equal(d.Webpush.Headers, map[string]string{"Urgency": "normal"}) {
		t.Errorf("low priority headers = %v", d.Webpush.Headers)
	}
}

// TestFCMAPNs: an iOS app reached through FCM gets the payload a direct
// APNs push carries, in the apns block, with the same headers.
func TestFCMAPNs(t *testing.T) {
	j := testJob()
	j.TTLSeconds = 60
	r := content.Resolve(content.Defaults{Title: "${fromClientId}", Body: "New message", Sound: "default"}, j)
	r.IOS.Data = map[string]any{"n": 3, "obj": map[string]any{"k": "<v>"}}
	r.IOS.MutableContent = true
	tmpl, err := NewAPNsTemplate(r.IOS, j, sent)
	if err != nil {
		t.Fatal(err)
	}
	m := tmpl.Message("tok", intp(7))
	if m.Token != "tok" || m.Android != nil || m.Webpush != nil || m.Notification != nil || m.Data != nil {
		t.Errorf("message = %+v, want only an apns block", m)
	}
	wantHeaders := map[string]string{
		"apns-push-type": "alert", "apns-priority": "10", "apns-collapse-id": "m1",
		"apns-expiration": "1714979349", // sent + 60 s
	}
	if !maps.Equal(m.APNS.Headers, wantHeaders) {
		t.Errorf("headers = %v\nwant      %v", m.APNS.Headers, wantHeaders)
	}
	got := wire(t, m)["apns"].(map[string]any)["payload"]
	direct, err := payloadWithBadge(r.IOS, 7)
	if err != nil {
		t.Fatal(err)
	}
	if gb, _ := json.Marshal(got); string(gb) != mustCanon(t, direct) {
		t.Errorf("apns payload = %s\nwant the direct one %s", gb, mustCanon(t, direct))
	}

	// Devices differ by badge only, and do not share it.
	a, b := tmpl.Message("a", intp(1)), tmpl.Message("b", nil)
	if *a.APNS.Payload.Aps.Badge != 1 || b.APNS.Payload.Aps.Badge != nil {
		t.Errorf("badges %v %v", a.APNS.Payload.Aps.Badge, b.APNS.Payload.Aps.Badge)
	}

	t.Run("background", func(t *testing.T) {
		p := r.IOS
		p.PushType = pushjob.PushTypeBackground
		bt, err := NewAPNsTemplate(p, j, sent)
		if err != nil {
			t.Fatal(err)
		}
		m := bt.Message("tok", intp(3))
		if m.APNS.Headers["apns-push-type"] != "background" || m.APNS.Headers["apns-priority"] != "5" {
			t.Errorf("headers = %v", m.APNS.Headers)
		}
		aps := wire(t, m)["apns"].(map[string]any)["payload"].(map[string]any)["aps"]
		if !maps.Equal(aps.(map[string]any), map[string]any{"content-available": 1.0}) {
			t.Errorf("aps = %v, want content-available alone, no badge", aps)
		}
	})
	t.Run("voip", func(t *testing.T) {
		p := r.IOS
		p.PushType = pushjob.PushTypeVoIP
		if _, err := NewAPNsTemplate(p, j, sent); err == nil || !strings.Contains(err.Error(), `"voip" cannot go through FCM`) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("too large", func(t *testing.T) {
		p := r.IOS
		p.Title = strings.Repeat("x", 5000)
		_, err := NewAPNsTemplate(p, j, sent)
		var se *apns.SizeError
		if !errors.As(err, &se) {
			t.Errorf("err = %v, want a SizeError", err)
		}
	})
	t.Run("long body cut to fit any badge", func(t *testing.T) {
		p := r.IOS
		p.Body = strings.Repeat("é", 3000)
		bt, err := NewAPNsTemplate(p, j, sent)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(bt.Message("tok", intp(1<<31)).APNS.Payload)
		if len(b) > apns.PayloadLimit(pushjob.PushTypeAlert) || !strings.Contains(string(b), "…") {
			t.Errorf("payload of %d bytes, cut %v", len(b), strings.Contains(string(b), "…"))
		}
	})
}

// mustCanon re-encodes JSON with sorted keys, as encoding/json writes maps.
func mustCanon(t *testing.T, b []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// payloadWithBadge is the payload a direct APNs push of p carries.
func payloadWithBadge(p content.Platform, badge int) ([]byte, error) {
	t, err := apns.NewPayloadTemplate(p, apns.PayloadLimit(pushjob.PushTypeAlert))
	if err != nil {
		return nil, err
	}
	return t.Payload(&badge)
}
