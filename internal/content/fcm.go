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
// for the app to open the right chat, and to group a chat's notifications
// itself if it wants: pushd tags each notification with its message id.
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
// expiration (none when the job has none: FCM keeps it four weeks); p's
// channel and sound; and the message id as notification tag, so that a
// duplicate of one message (a retry after a crash between FCM's answer and
// its record) replaces the first notification rather than stacking, while
// different messages of one chat each show.
//
// There is no collapse key: every message is non-collapsible. FCM keeps at
// most four collapse keys per offline device, so keying by conversation
// would lose whole chats for a phone offline in five, and a collapsed
// message replaces its chat's earlier one; non-collapsible messages are
// kept, up to 100 per offline device, and delivered when it returns.
func NewFCMTemplate(p Platform, j pushjob.Job, now time.Time) *FCMTemplate {
	t := &FCMTemplate{}
	body := p.Body
	if body == "" && p.Title == "" {
		body = p.Alert
	}
	t.msg.Data = fcmData(p.Data, j.ConversationID)

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
			Tag:       j.MessageID,
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
		if pushjob.FCMReservedKey(k) {
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
