package fcm

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	"firebase.google.com/go/v4/messaging"

	"github.com/pushd/pushd/internal/content"
	"github.com/pushd/pushd/pushjob"
)

func TestFCMMessage(t *testing.T) {
	now := sent.Add(2 * time.Second)
	p := content.Platform{
		Title: "alice", Body: "hi", Sound: "default", ChannelID: "chat", ThreadID: "conv-1",
		Data: map[string]any{"s": "text", "n": 3, "f": 1.5, "b": true, "null": nil, "obj": map[string]any{"k": []any{1, "<&>"}}},
	}
	j := testJob()
	j.TTLSeconds = 60
	m := NewAndroidTemplate(p, j, now).Message("tok", intp(4))

	if m.Token != "tok" {
		t.Errorf("token = %q", m.Token)
	}
	if m.Notification == nil || m.Notification.Title != "alice" || m.Notification.Body != "hi" {
		t.Errorf("notification = %+v", m.Notification)
	}
	wantData := map[string]string{
		"s": "text", "n": "3", "f": "1.5", "b": "true", "null": "null",
		"obj": `{"k":[1,"<&>"]}`, "conversation_id": "conv-1",
	}
	if !maps.Equal(m.Data, wantData) {
		t.Errorf("data = %v\nwant   %v", m.Data, wantData)
	}
	a := m.Android
	if a == nil || a.Notification == nil {
		t.Fatalf("android = %+v", a)
	}
	if a.CollapseKey != "" || a.Notification.Tag != "m1" {
		t.Errorf("collapse key %q, tag %q; want none and the message id", a.CollapseKey, a.Notification.Tag)
	}
	if a.Priority != "high" {
		t.Errorf("priority = %q, want high", a.Priority)
	}
	// Sent at `sent`, 60 s to live, built 2 s later: 58 s left.
	if a.TTL == nil || *a.TTL != 58*time.Second {
		t.Errorf("ttl = %v, want 58s", a.TTL)
	}
	if a.Notification.ChannelID != "chat" || a.Notification.Sound != "default" {
		t.Errorf("channel %q, sound %q", a.Notification.ChannelID, a.Notification.Sound)
	}
	if a.Notification.NotificationCount == nil || *a.Notification.NotificationCount != 4 {
		t.Errorf("notification count = %v, want 4", a.Notification.NotificationCount)
	}
}

func TestFCMPriority(t *testing.T) {
	for prio, want := range map[pushjob.Priority]string{
		"": "high", pushjob.PriorityHigh: "high", pushjob.PriorityNormal: "high", pushjob.PriorityLow: "normal",
	} {
		j := testJob()
		j.Priority = prio
		if got := messageOnce(content.Platform{Body: "b"}, j, "t", nil).Android.Priority; got != want {
			t.Errorf("priority %q: android priority %q, want %q", prio, got, want)
		}
	}
}

func TestFCMTTL(t *testing.T) {
	now := sent.Add(10 * time.Second)
	at := func(d time.Duration) *time.Time { t := sent.Add(d); return &t }
	for _, tc := range []struct {
		name      string
		ttl       int
		expiresAt *time.Time
		ts        time.Time
		want      *time.Duration
	}{
		{name: "none", ts: sent},
		{name: "ttl from the timestamp", ttl: 100, ts: sent, want: new(90 * time.Second)},
		{name: "ttl without a timestamp: none (Normalize sets one)", ttl: 100},
		{name: "expires_at", expiresAt: at(time.Hour), ts: sent, want: new(time.Hour - 10*time.Second)},
		{name: "expires_at wins over ttl", ttl: 30, expiresAt: at(time.Hour), ts: sent, want: new(time.Hour - 10*time.Second)},
		{name: "seconds are whole", expiresAt: at(20*time.Second + 900*time.Millisecond), ts: sent, want: new(10 * time.Second)},
		{name: "past expiry is zero", expiresAt: at(time.Second), ts: sent, want: new(time.Duration(0))},
	} {
		j := testJob()
		j.TTLSeconds, j.ExpiresAt, j.Timestamp = tc.ttl, tc.expiresAt, tc.ts
		got := NewAndroidTemplate(content.Platform{Body: "b"}, j, now).Message("t", nil).Android.TTL
		if (got == nil) != (tc.want == nil) || got != nil && *got != *tc.want {
			t.Errorf("%s: ttl = %v, want %v", tc.name, deref(got), deref(tc.want))
		}
	}
}

func deref(d *time.Duration) any {
	if d == nil {
		return nil
	}
	return *d
}

func TestFCMReservedDataKeys(t *testing.T) {
	p := content.Platform{Body: "b", Data: map[string]any{
		"from": "x", "message_type": "x", "google.sent": "x", "gcm.x": "x",
		"conversation_id": "spoofed", "fromage": "kept", "notification": "kept",
	}}
	got := messageOnce(p, testJob(), "t", nil).Data
	want := map[string]string{"conversation_id": "conv-1", "fromage": "kept", "notification": "kept"}
	if !maps.Equal(got, want) {
		t.Errorf("data = %v, want %v", got, want)
	}
}

func TestFCMDataOnly(t *testing.T) {
	j := testJob()
	j.ConversationID = ""
	m := messageOnce(content.Platform{}, j, "t", intp(3))
	if m.Notification != nil || m.Android.Notification != nil || m.Data != nil {
		t.Errorf("empty content: notification %+v, android notification %+v, data %v", m.Notification, m.Android.Notification, m.Data)
	}
	if m.Token != "t" || m.Android.Priority != "high" {
		t.Errorf("data-only message: %+v", m)
	}
}

func TestFCMTemplateCopies(t *testing.T) {
	j := testJob()
	j.TTLSeconds = 60
	tmpl := NewAndroidTemplate(content.Platform{Title: "t", Body: "b"}, j, sent)
	a := tmpl.Message("a", intp(1))
	b := tmpl.Message("b", nil)
	*a.Android.TTL = 0
	*a.Android.Notification.NotificationCount = 100
	a.Android.Notification.Tag = "changed"
	if b.Token != "b" || *b.Android.TTL != time.Minute || b.Android.Notification.NotificationCount != nil || b.Android.Notification.Tag != "m1" {
		t.Errorf("messages of one template share per-device state: %+v %+v", b.Android, b.Android.Notification)
	}
	if c := tmpl.Message("c", intp(2)); *c.Android.TTL != time.Minute || *c.Android.Notification.NotificationCount != 2 {
		t.Errorf("changing a message changed the template")
	}

	// What goes on the wire: the SDK's own encoding accepts it.
	if _, err := json.Marshal(&messaging.Message{Token: a.Token, Android: b.Android, Data: b.Data, Notification: b.Notification}); err != nil {
		t.Fatal(err)
	}
}

// Messages are non-collapsible: FCM keeps at most four collapse keys for an
// offline device, so a collapse key per chat would lose chats. The tag is
// the message id: each message of a chat shows, and a duplicate of one
// message replaces its notification.
func TestFCMNonCollapsibleTaggedByMessage(t *testing.T) {
	tags := make(map[string]string)
	for _, conv := range []string{"conv-1", "conv-2", "conv-3", "conv-4", "conv-5"} {
		for _, msg := range []string{"a", "b"} {
			j := testJob()
			j.ConversationID, j.MessageID = conv, conv+"/"+msg
			m := messageOnce(content.Platform{Title: "t", Body: "b"}, j, "tok", nil)
			if m.Android.CollapseKey != "" {
				t.Errorf("%s: collapse key %q, want none", j.MessageID, m.Android.CollapseKey)
			}
			if m.Data[DataConversationID] != conv {
				t.Errorf("%s: data %v, want %s=%s", j.MessageID, m.Data, DataConversationID, conv)
			}
			tag := m.Android.Notification.Tag
			if prev, dup := tags[tag]; dup {
				t.Errorf("%s and %s share the tag %q", prev, j.MessageID, tag)
			}
			tags[tag] = j.MessageID
			// On the wire: no collapse_key at all.
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(b), "collapse_key") {
				t.Errorf("%s: message %s has a collapse_key", j.MessageID, b)
			}
		}
	}
	// The same message again (a retry after a crash) has the same tag.
	j := testJob()
	first := messageOnce(content.Platform{Body: "b"}, j, "tok", nil).Android.Notification.Tag
	again := messageOnce(content.Platform{Body: "b"}, j, "tok", nil).Android.Notification.Tag
	if first != again || first != j.MessageID {
		t.Errorf("tags %q and %q for one message, want %q twice", first, again, j.MessageID)
	}
}

var sent = time.Date(2024, 5, 6, 7, 8, 9, 123_000_000, time.UTC)

func testJob() pushjob.Job {
	return pushjob.Job{
		AppID:          "default",
		MessageID:      "m1",
		ConversationID: "conv-1",
		FromClientID:   "alice",
		Recipients:     []string{"bob"},
		Timestamp:      sent,
	}
}

func intp(n int) *int { return &n }
