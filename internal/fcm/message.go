package fcm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"firebase.google.com/go/v4/messaging"

	"github.com/pushd/pushd/internal/apns"
	"github.com/pushd/pushd/internal/content"
	"github.com/pushd/pushd/pushjob"
)

// DataConversationID is the FCM data key that carries the conversation id
// to Android and web apps, for the app to open the right chat, and to
// group a chat's notifications itself if it wants.
const DataConversationID = "conversation_id"

// Template is one job's FCM message for one platform (Android, iOS or
// web), built once; Message copies it for each device. A template is safe
// for concurrent use.
type Template struct {
	msg messaging.Message

	// Android.
	android *messaging.AndroidConfig
	notif   messaging.AndroidNotification
	ttl     *time.Duration
	hasNote bool

	// iOS: the apns block's headers, its aps without the badge, and its
	// custom keys, all encoded once and shared by every device's message.
	apns    *messaging.APNSConfig
	aps     messaging.Aps
	custom  map[string]any
	noBadge bool
}

// NewAndroidTemplate builds p's Android message for job j as of now, which the
// TTL counts from.
//
// The message is a notification with p's title and body, or localized
// title and body keys (or a data-only message when it has none of them),
// and data: p's custom data as FCM's string values (see fcmData) with
// DataConversationID set to the conversation id.
//
// The android block: priority "high" for high and normal jobs, "normal"
// for low ones (FCM's normal priority waits for the device to wake, which
// suits digest-like traffic); a TTL up to the job's Expiry, as APNs gets
// it as expiration (none when the job has none: FCM keeps it four weeks);
// p's channel, sound, icon, click action and localization keys; and a
// notification tag (see content.Tag).
//
// A job that collapses also gets the conversation id as collapse key, so
// that FCM keeps only a chat's newest message for an offline device.
// Others have none: every message is non-collapsible. FCM keeps at most
// four collapse keys per offline device, so keying by conversation would
// lose whole chats for a phone offline in five; non-collapsible messages
// are kept, up to 100 per offline device, and delivered when it returns.
func NewAndroidTemplate(p content.Platform, j pushjob.Job, now time.Time) *Template {
	t := &Template{android: &messaging.AndroidConfig{Priority: fcmPriority(j)}}
	t.msg.Data = fcmData(p.Data, j.ConversationID)
	if ttl, ok := fcmTTL(j, now); ok {
		t.ttl = &ttl
	}
	if content.Collapses(j) {
		t.android.CollapseKey = j.ConversationID
	}
	body := fcmBody(p)
	if p.Title != "" || body != "" {
		t.msg.Notification = &messaging.Notification{Title: p.Title, Body: body}
	}
	if t.msg.Notification != nil || p.LocKey != "" || p.TitleLocKey != "" {
		t.hasNote = true
		t.notif = messaging.AndroidNotification{
			Tag:          content.Tag(j),
			ChannelID:    p.ChannelID,
			Sound:        p.Sound,
			Icon:         p.Icon,
			ClickAction:  p.ClickAction,
			BodyLocKey:   p.LocKey,
			BodyLocArgs:  p.LocArgs,
			TitleLocKey:  p.TitleLocKey,
			TitleLocArgs: p.TitleLocArgs,
		}
	}
	return t
}

// NewWebTemplate builds p's message for browsers as of now: a webpush
// block with p's title, body and icon and the notification tag, the
// click action as the link a tap opens, Urgency "high" (or "normal" for
// a low-priority job) and the TTL header; data as for Android. Without
// title or body it is data-only, for the page's service worker.
func NewWebTemplate(p content.Platform, j pushjob.Job, now time.Time) *Template {
	t := &Template{}
	t.msg.Data = fcmData(p.Data, j.ConversationID)
	w := &messaging.WebpushConfig{Headers: map[string]string{"Urgency": fcmPriority(j)}}
	if ttl, ok := fcmTTL(j, now); ok {
		w.Headers["TTL"] = strconv.FormatInt(int64(ttl/time.Second), 10)
	}
	if body := fcmBody(p); p.Title != "" || body != "" {
		w.Notification = &messaging.WebpushNotification{Title: p.Title, Body: body, Icon: p.Icon, Tag: content.Tag(j)}
	}
	if p.ClickAction != "" {
		w.FCMOptions = &messaging.WebpushFCMOptions{Link: p.ClickAction}
	}
	t.msg.Webpush = w
	return t
}

// NewAPNsTemplate builds p's message for iOS apps that use FCM: an
// apns block that carries the payload a direct APNs push would (see
// apns.PayloadTemplate; custom data beside aps, not in FCM's data) with the
// apns-push-type, apns-priority, apns-expiration and apns-collapse-id
// headers a direct push gets. FCM picks the topic from the app's
// registration, and sends alert and background pushes only: another
// push type is an error, as is a payload that cannot fit.
func NewAPNsTemplate(p content.Platform, j pushjob.Job, now time.Time) (*Template, error) {
	pt := p.PushType
	if pt == "" {
		pt = pushjob.PushTypeAlert
	}
	if pt != pushjob.PushTypeAlert && pt != pushjob.PushTypeBackground {
		return nil, fmt.Errorf("fcm: push_type %q cannot go through FCM, which sends alert and background pushes to iOS", pt)
	}
	payload, takesBadge, err := apns.EmbeddedPayload(p)
	if err != nil {
		return nil, err
	}
	// The payload is decoded one level deep, to the raw values FCM's
	// apns block re-encodes as they are.
	var top map[string]json.RawMessage
	if err := json.Unmarshal(payload, &top); err != nil {
		return nil, fmt.Errorf("fcm: APNs payload: %w", err)
	}
	var aps map[string]json.RawMessage
	if err := json.Unmarshal(top["aps"], &aps); err != nil {
		return nil, fmt.Errorf("fcm: APNs payload aps: %w", err)
	}
	delete(top, "aps")
	t := &Template{noBadge: !takesBadge}
	t.aps.CustomData = make(map[string]any, len(aps))
	for k, v := range aps {
		t.aps.CustomData[k] = v
	}
	if len(top) > 0 {
		t.custom = make(map[string]any, len(top))
		for k, v := range top {
			t.custom[k] = v
		}
	}
	h := map[string]string{
		"apns-push-type":   string(pt),
		"apns-priority":    strconv.Itoa(apns.Priority(pt, j.Priority)),
		"apns-collapse-id": apns.CollapseID(j),
	}
	if exp := j.Expiry(); !exp.IsZero() {
		h["apns-expiration"] = strconv.FormatInt(exp.Unix(), 10)
	}
	t.apns = &messaging.APNSConfig{Headers: h}
	return t, nil
}

// Message returns the message for one device token, with badge as the
// notification count or app badge (nil for none). Messages of one
// template share everything but the token and the badge; nothing, the
// FCM client included, modifies them.
func (t *Template) Message(token string, badge *int) *messaging.Message {
	switch {
	case t.apns != nil:
		d := &struct {
			msg     messaging.Message
			apns    messaging.APNSConfig
			payload messaging.APNSPayload
			aps     messaging.Aps
			count   int
		}{msg: t.msg, apns: *t.apns, aps: t.aps}
		d.msg.Token = token
		if badge != nil && !t.noBadge {
			d.count = *badge
			d.aps.Badge = &d.count
		}
		d.payload = messaging.APNSPayload{Aps: &d.aps, CustomData: t.custom}
		d.apns.Payload = &d.payload
		d.msg.APNS = &d.apns
		return &d.msg
	case t.android != nil:
		// One allocation holds the per-device copy of every struct that
		// differs; the rest is shared.
		d := &struct {
			msg     messaging.Message
			android messaging.AndroidConfig
			notif   messaging.AndroidNotification
			ttl     time.Duration
			count   int
		}{msg: t.msg, android: *t.android, notif: t.notif}
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
	m := t.msg
	m.Token = token
	return &m
}

// fcmPriority is the Android priority and the web Urgency of j: "high"
// for chat, "normal" for low-priority jobs, which may wait for the device
// to wake.
func fcmPriority(j pushjob.Job) string {
	if j.Priority == pushjob.PriorityLow {
		return "normal"
	}
	return "high"
}

// fcmTTL is the time j has left to live as of now, in whole seconds as FCM
// counts it, and false for a job without expiry. A job already past its
// expiry gets 0, "now or never", though the dispatcher should have
// dropped it.
func fcmTTL(j pushjob.Job, now time.Time) (time.Duration, bool) {
	exp := j.Expiry()
	if exp.IsZero() {
		return 0, false
	}
	return max(exp.Sub(now).Truncate(time.Second), 0), true
}

func fcmBody(p content.Platform) string {
	if p.Body == "" && p.Title == "" {
		return p.Alert
	}
	return p.Body
}

// fcmData converts custom data to FCM's string values (see NewAndroidTemplate).
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
