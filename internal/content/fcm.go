package content

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"firebase.google.com/go/v4/messaging"

	"github.com/pushd/pushd/pushjob"
)

// DataConversationID is the FCM data key that carries the conversation id,
// for the app to open the right chat.
const DataConversationID = "conversation_id"

// FCMTemplate is one job's FCM message for one platform shape, built once;
// Message copies it for each device. A template is safe for concurrent use.
type FCMTemplate struct {
	msg     messaging.Message
	android messaging.AndroidConfig
	notif   messaging.AndroidNotification
	ttl     *time.Duration
	hasNote bool
}

// NewFCMTemplate builds p's FCM message for job j as of now, which the TTL
// counts from.
//
// The message is a notification with p's title and body (or a data-only
// message when both are empty), and data: p's custom data with every value
// a string, as FCM requires: strings as they are, anything else (numbers,
// booleans, null, nested objects and arrays) as its JSON text, and
// DataConversationID set to the conversation id. Keys FCM reserves ("from",
// "message_type", and any starting with "google" or "gcm") are dropped,
// since one would make FCM refuse the whole message; pushjob.Validate
// refuses them in jobs, but app defaults may still hold one.
//
// For Android: priority "high" for high and normal jobs, "normal" for low
// ones (FCM's normal priority waits for the device to wake, which suits
// digest-like traffic); a TTL up to the job's Expiry, as APNs gets it as
// expiration (none when the job has none: FCM keeps it four weeks); the
// conversation id as
// collapse key and as notification tag, so a chat's notifications replace
// one another instead of stacking, and a duplicate after a crash replaces
// the first; p's channel and sound.
func NewFCMTemplate(p Platform, j pushjob.Job, now time.Time) *FCMTemplate {
	t := &FCMTemplate{}
	body := p.Body
	if body == "" && p.Title == "" {
		body = p.Alert
	}
	t.msg.Data = fcmData(p.Data, j.ConversationID)

	t.android.CollapseKey = j.ConversationID
	t.android.Priority = "high"
	if j.Priority == pushjob.PriorityLow {
		t.android.Priority = "normal"
	}
	if exp := j.Expiry(); !exp.IsZero() {
		// FCM counts TTL in seconds; a job already past its expiry gets 0,
		// "now or never", though the dispatcher should have dropped it.
		ttl := max(exp.Sub(now).Truncate(time.Second), 0)
		t.ttl = &ttl
	}
	if p.Title != "" || body != "" {
		t.hasNote = true
		t.msg.Notification = &messaging.Notification{Title: p.Title, Body: body}
		t.notif = messaging.AndroidNotification{
			Tag:       j.ConversationID,
			ChannelID: p.ChannelID,
			Sound:     p.Sound,
		}
	}
	return t
}

// Message returns the message for one device token, with badge as the
// notification count (nil for none). Messages of one template share their
// Notification and Data; nothing, the FCM client included, modifies them.
func (t *FCMTemplate) Message(token string, badge *int) *messaging.Message {
	// One allocation holds the per-device copy of every struct that
	// differs; the rest is shared.
	d := &struct {
		msg     messaging.Message
		android messaging.AndroidConfig
		notif   messaging.AndroidNotification
		ttl     time.Duration
		count   int
	}{msg: t.msg, android: t.android, notif: t.notif}
	d.msg.Token = token
	d.msg.Android = &d.android
	if t.ttl != nil {
		d.ttl = *t.ttl
		d.android.TTL = &d.ttl
	}
	if t.hasNote {
		d.android.Notification = &d.notif
		if badge != nil {
			d.count = *badge
			d.notif.NotificationCount = &d.count
		}
	}
	return &d.msg
}

// FCMMessage builds p's message for job j and one device token, with its TTL
// counted from now. A job with many devices should use NewFCMTemplate once.
func FCMMessage(p Platform, j pushjob.Job, token string, badge *int) *messaging.Message {
	return NewFCMTemplate(p, j, time.Now()).Message(token, badge)
}

// fcmData converts custom data to FCM's string values (see NewFCMTemplate).
func fcmData(data map[string]any, convID string) map[string]string {
	out := make(map[string]string, len(data)+1)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for k, v := range data {
		if fcmReserved(k) {
			continue
		}
		if s, ok := v.(string); ok {
			out[k] = s
			continue
		}
		buf.Reset()
		if err := enc.Encode(v); err != nil {
			// Only values that never come out of JSON or YAML decoding
			// (channels, functions) get here; send something readable
			// rather than nothing.
			out[k] = fmt.Sprint(v)
			continue
		}
		out[k] = strings.TrimSuffix(buf.String(), "\n")
	}
	if convID != "" {
		out[DataConversationID] = convID
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// fcmReserved reports whether FCM refuses k as a data key.
func fcmReserved(k string) bool {
	return k == "from" || k == "message_type" ||
		strings.HasPrefix(k, "google") || strings.HasPrefix(k, "gcm")
}
