// Package pushjob is the contract between an IM server and pushd: the
// "recipients offline" job, its validation, and the asynq task that carries
// it. Go IM servers import it to enqueue jobs; others POST the same JSON to
// pushd's /v1/push.
package pushjob

import (
	"encoding/json"
	"time"
)

// TaskType is the asynq task type of a job.
const TaskType = "push:offline"

// MaxRecipients is the most recipients one job may name: a chat group of
// a million. pushd splits a job with more recipients than its chunk size
// (worker.chunk_size) into child jobs, so that every worker of every pushd
// process shares a big group's work.
const MaxRecipients = 1_000_000

// DefaultApp is the app a job without app_id belongs to.
const DefaultApp = "default"

// Job is one message that reached offline members of a conversation.
type Job struct {
	// AppID selects the configured app (credentials, default content).
	AppID string `json:"app_id,omitempty"`
	// MessageID is the idempotency key: a message is never pushed twice to
	// one device.
	MessageID string `json:"message_id"`
	// ConversationID scopes mutes and groups notifications.
	ConversationID string `json:"conversation_id"`
	// FromClientID is the sender, for templates.
	FromClientID string `json:"from_client_id,omitempty"`
	// Recipients are the offline client ids (1..MaxRecipients).
	Recipients []string `json:"recipients"`
	// MentionAll and Mentions say who was @-mentioned; a mute can let
	// mentions through.
	MentionAll bool     `json:"mention_all,omitempty"`
	Mentions   []string `json:"mentions,omitempty"`
	// Push overrides the app's default content field by field.
	Push *Content `json:"push,omitempty"`
	// Force pushes even to recipients who muted the conversation.
	Force bool `json:"force,omitempty"`
	// TTLSeconds and ExpiresAt bound the push's usefulness: after it the
	// push is dropped, and it is passed to the provider as expiration.
	TTLSeconds int        `json:"ttl_seconds,omitempty"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	// Priority is high, normal or low; it picks the queue.
	Priority Priority `json:"priority,omitempty"`
	// Timestamp is when the message was sent (${timestamp} in templates);
	// zero is when the job was made.
	Timestamp time.Time `json:"timestamp,omitzero"`
}

// Priority picks a job's queue.
type Priority string

const (
	PriorityHigh   Priority = "high"
	PriorityNormal Priority = "normal"
	PriorityLow    Priority = "low"
)

// Content is a push's content. Fields left empty fall back to the app's
// default content; IOS, Android and Web override per platform.
type Content struct {
	Alert    string `json:"alert,omitempty"`
	Title    string `json:"title,omitempty"`
	Body     string `json:"body,omitempty"`
	Badge    *Badge `json:"badge,omitempty"`
	Sound    string `json:"sound,omitempty"`
	Category string `json:"category,omitempty"`
	ThreadID string `json:"thread_id,omitempty"`
	// Data holds custom keys: outside "aps" on APNs, string values in FCM's
	// data.
	Data map[string]any `json:"data,omitempty"`
	// Collapse makes a conversation's notifications replace one another:
	// a device shows only the newest, and one that was offline gets only
	// the newest (apns-collapse-id, FCM collapse_key and notification
	// tag, all the conversation id). Without it each message shows; a
	// duplicate of one message still replaces itself.
	Collapse bool             `json:"collapse,omitempty"`
	IOS      *PlatformContent `json:"ios,omitempty"`
	Android  *PlatformContent `json:"android,omitempty"`
	// Web is for browsers reached through FCM (installations with
	// platform "web").
	Web *PlatformContent `json:"web,omitempty"`
}

// PlatformContent overrides Content for one platform.
type PlatformContent struct {
	Alert          string `json:"alert,omitempty"`
	Title          string `json:"title,omitempty"`
	Body           string `json:"body,omitempty"`
	Badge          *Badge `json:"badge,omitempty"`
	Sound          string `json:"sound,omitempty"`
	Category       string `json:"category,omitempty"`
	ThreadID       string `json:"thread_id,omitempty"`
	MutableContent bool   `json:"mutable_content,omitempty"`
	// ChannelID is the Android notification channel (Android only).
	ChannelID string         `json:"channel_id,omitempty"`
	Data      map[string]any `json:"data,omitempty"`

	// LocKey and LocArgs make the body localized on the device, from the
	// app's strings (iOS: aps.alert loc-key and loc-args; Android:
	// body_loc_key and body_loc_args). TitleLocKey and TitleLocArgs do
	// the same for the title. Args need their key. Not for web.
	LocKey       string   `json:"loc_key,omitempty"`
	LocArgs      []string `json:"loc_args,omitempty"`
	TitleLocKey  string   `json:"title_loc_key,omitempty"`
	TitleLocArgs []string `json:"title_loc_args,omitempty"`

	// ClickAction is what a tap opens (Android and web): on Android the
	// intent action of the activity to start; on the web an https URL.
	ClickAction string `json:"click_action,omitempty"`
	// Icon is the notification's small icon (Android and web): a drawable
	// resource name on Android, an image URL on the web.
	Icon string `json:"icon,omitempty"`

	// The fields below are iOS only: Validate refuses them in the android
	// and web blocks.

	// PushType is the APNs push type; empty is PushTypeAlert.
	PushType PushType `json:"push_type,omitempty"`
	// LiveActivity is the Live Activity update of a push_type
	// "liveactivity" push, and only of one.
	LiveActivity *LiveActivity `json:"live_activity,omitempty"`
}

// LiveActivity is what a push_type "liveactivity" push does to a Live
// Activity: aps event, content-state, dismissal-date, stale-date and, to
// start one, attributes-type and attributes. aps timestamp is the job's
// Timestamp.
type LiveActivity struct {
	// Event is LiveActivityStart, LiveActivityUpdate or LiveActivityEnd.
	Event string `json:"event"`
	// ContentState is the activity's new dynamic content, decoded on the
	// device into its ContentState type; required to start or update.
	ContentState map[string]any `json:"content_state,omitempty"`
	// DismissalDate and StaleDate are unix seconds; zero leaves them out.
	DismissalDate int64 `json:"dismissal_date,omitempty"`
	StaleDate     int64 `json:"stale_date,omitempty"`
	// AttributesType and Attributes describe the activity to start (event
	// "start" only): the ActivityAttributes type name and its static
	// values.
	AttributesType string         `json:"attributes_type,omitempty"`
	Attributes     map[string]any `json:"attributes,omitempty"`
}

// Live Activity events.
const (
	LiveActivityStart  = "start"
	LiveActivityUpdate = "update"
	LiveActivityEnd    = "end"
)

// PushType is the kind of APNs push (apns-push-type).
type PushType string

const (
	// PushTypeAlert shows a notification: apns-priority 10, or 5 for a
	// low-priority job.
	PushTypeAlert PushType = "alert"
	// PushTypeBackground wakes the app silently: aps content-available 1,
	// no alert, sound or badge, and always apns-priority 5 as Apple
	// requires.
	PushTypeBackground PushType = "background"
	// PushTypeVoIP is a PushKit call push: topic <bundle id>.voip, payload
	// up to 5120 bytes.
	PushTypeVoIP PushType = "voip"
	// PushTypeComplication updates a watchOS complication: topic <bundle
	// id>.complication, an alert-shaped payload, priority as the job's.
	PushTypeComplication PushType = "complication"
	// PushTypeLocation asks a Location Push Service Extension for the
	// device's location: topic <bundle id>.location-query, aps {} and
	// custom data, priority 10 (5 for a low-priority job).
	PushTypeLocation PushType = "location"
	// PushTypePushToTalk wakes a Push to Talk app: topic <bundle
	// id>.voip-ptt, aps {} and custom data, always priority 10.
	PushTypePushToTalk PushType = "pushtotalk"
	// PushTypeWidgets reloads the app's widgets: topic <bundle
	// id>.push-type.widgets, aps {"content-changed":true}.
	PushTypeWidgets PushType = "widgets"
	// PushTypeControls reloads the app's controls: topic <bundle
	// id>.push-type.controls, aps {"content-changed":true}.
	PushTypeControls PushType = "controls"
	// PushTypeFileProvider signals a File Provider extension: topic
	// <bundle id>.pushkit.fileprovider, an empty aps beside the custom
	// data (container-identifier), always priority 5.
	PushTypeFileProvider PushType = "fileprovider"
	// PushTypeLiveActivity updates, ends or starts a Live Activity: topic
	// <bundle id>.push-type.liveactivity, aps from the ios block's
	// live_activity, priority as the job's.
	PushTypeLiveActivity PushType = "liveactivity"
	// PushTypeMDM is Apple's device-management push. Validate refuses it:
	// only an MDM server, with its MDM push certificate, sends one.
	PushTypeMDM PushType = "mdm"
)

// Silent reports whether pushes of type t show nothing: their aps carries
// no alert, sound or badge.
func (t PushType) Silent() bool {
	switch t {
	case PushTypeBackground, PushTypeLocation, PushTypePushToTalk,
		PushTypeWidgets, PushTypeControls, PushTypeFileProvider:
		return true
	}
	return false
}

// Badge is a number, or "Increment": add one to the device's stored badge
// and send the result.
type Badge struct {
	Increment bool
	Value     int
}

// MarshalJSON writes a number or "Increment".
func (b Badge) MarshalJSON() ([]byte, error) {
	if b.Increment {
		return []byte(`"Increment"`), nil
	}
	return json.Marshal(b.Value)
}

// UnmarshalJSON reads a number or "Increment".
func (b *Badge) UnmarshalJSON(data []byte) error {
	var s string
	if json.Unmarshal(data, &s) == nil {
		if s != "Increment" {
			return &badgeError{string(data)}
		}
		*b = Badge{Increment: true}
		return nil
	}
	var n int
	if err := json.Unmarshal(data, &n); err != nil {
		return &badgeError{string(data)}
	}
	*b = Badge{Value: n}
	return nil
}

type badgeError struct{ got string }

func (e *badgeError) Error() string {
	return "badge " + e.got + `: want a whole number or "Increment"`
}
