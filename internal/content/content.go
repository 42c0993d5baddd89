// Package content decides what a push says, whatever the provider. An
// app's default content and a job's overrides are resolved once per job
// into one Platform per shape (iOS, Android, web); each provider package
// builds its payloads from it once per job (internal/apns payload.go,
// internal/fcm message.go), leaving only what differs per device, the
// badge, to splice in.
//
// Default content is a template: ${convId}, ${fromClientId} and
// ${timestamp} (the job's Timestamp in unix milliseconds) are expanded in its
// alert, title and body and in the string values of its data, following
// LeanCloud's convention so users can move over. Any other ${name} is left as
// written, so a typo shows up in the notification instead of silently
// vanishing. Content that arrives with a job is never expanded: it is the IM
// server's final text and often quotes what a user typed.
package content

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/pushd/pushd/pushjob"
)

// Defaults is an app's default push content, a template (see the package
// documentation).
type Defaults struct {
	// Alert is the simple form of Body.
	Alert    string
	Title    string
	Body     string
	Sound    string
	Category string
	Badge    *pushjob.Badge
	// Data holds custom keys: outside "aps" on APNs, string values in FCM's
	// data.
	Data map[string]any
}

// Platform is the content for one provider shape, resolved from an app's
// defaults and a job's overrides.
type Platform struct {
	// Alert is the simple form of Body: a layer (defaults, the job's push,
	// the platform block) that gives an alert but no body sets Body to it.
	Alert    string
	Title    string
	Body     string
	Sound    string
	Category string
	// ThreadID groups notifications on iOS; it defaults to the conversation
	// id so that a chat's notifications sit together.
	ThreadID string
	// Badge is nil when the push leaves the badge alone.
	Badge *pushjob.Badge
	// MutableContent lets an iOS notification service extension rewrite
	// the notification (decrypt, fetch an avatar).
	MutableContent bool
	// ChannelID is the Android notification channel.
	ChannelID string
	// ClickAction is what a tap opens: an Android intent action, or a
	// web notification's https link.
	ClickAction string
	// Icon is the small icon: an Android drawable name, or a web image URL.
	Icon string
	// PushType is the APNs push type (iOS only); empty is alert. A
	// Platform of a silent type (background, location, pushtotalk,
	// widgets, controls, fileprovider) carries no alert, sound, category,
	// thread, badge or mutable-content: Resolve clears them. A
	// liveactivity Platform carries only the ios block's own title, body
	// and sound, beside LiveActivity.
	PushType pushjob.PushType
	// LocKey and LocArgs localize the alert body on the device,
	// TitleLocKey and TitleLocArgs the title (iOS only).
	LocKey       string
	LocArgs      []string
	TitleLocKey  string
	TitleLocArgs []string
	// LiveActivity is the aps content of a liveactivity push, and
	// Timestamp its aps timestamp: the job's Timestamp in unix seconds.
	LiveActivity *pushjob.LiveActivity
	Timestamp    int64
	// Data holds custom keys. Its top level is this Platform's own map;
	// nested values may be shared with the job and must not be modified.
	Data map[string]any
}

// Resolved is a job's content for each platform: iOS (through APNs, or
// FCM's apns block), Android and web (FCM).
type Resolved struct {
	IOS, Android, Web Platform
}

// Resolve applies a job's content to an app's defaults, field by field: a
// non-empty field of the job's push replaces the default, a non-empty field
// of its ios or android block replaces that in turn, and data merges key by
// key in the same order. Badge, once set by a layer, is replaced only by a
// later layer that sets one.
func Resolve(d Defaults, j pushjob.Job) Resolved {
	vars := templateVars(j)
	base := Platform{}
	base.apply(layer{
		alert:    vars.expand(d.Alert),
		title:    vars.expand(d.Title),
		body:     vars.expand(d.Body),
		sound:    d.Sound,
		category: d.Category,
		badge:    d.Badge,
		data:     vars.expandData(d.Data),
	})
	if c := j.Push; c != nil {
		base.apply(layer{
			alert: c.Alert, title: c.Title, body: c.Body, sound: c.Sound,
			category: c.Category, threadID: c.ThreadID, badge: c.Badge, data: c.Data,
		})
	}

	r := Resolved{IOS: base, Android: base, Web: base}
	// Each platform gets its own top-level data map and badge, so a caller
	// changing one does not change the other.
	r.IOS.Data = maps.Clone(base.Data)
	r.Android.Data = maps.Clone(base.Data)
	r.Web.Data = maps.Clone(base.Data)
	if base.Badge != nil {
		b := *base.Badge
		r.Android.Badge = &b
	}
	// A browser shows no badge number, plays no chosen sound and has no
	// category or thread: the web keeps text, data, icon and link.
	r.Web.Badge, r.Web.Sound, r.Web.Category, r.Web.ThreadID = nil, "", "", ""
	if c := j.Push; c != nil {
		r.IOS.applyPlatform(c.IOS)
		r.Android.applyPlatform(c.Android)
		r.Web.applyPlatform(c.Web)
	}
	for _, p := range []*Platform{&r.IOS, &r.Android, &r.Web} {
		if p.ThreadID == "" && p != &r.Web {
			p.ThreadID = j.ConversationID
		}
		if p.Title == "" && p.Body == "" {
			p.Body = p.Alert
		}
	}
	switch pt := r.IOS.PushType; {
	case pt.Silent():
		// Silent: the defaults' and shared block's text is for the
		// other pushes. Clearing the badge here also keeps the
		// pipeline from incrementing a badge nobody is shown.
		r.IOS = Platform{PushType: pt, Data: r.IOS.Data}
	case pt == pushjob.PushTypeLiveActivity:
		// An alert on a Live Activity update lights the screen: only
		// text the job's ios block gives for it is sent, never the
		// app's default message text.
		la := Platform{PushType: pt, Data: r.IOS.Data}
		if c := j.Push.IOS; c != nil {
			la.apply(layer{alert: c.Alert, title: c.Title, body: c.Body, sound: c.Sound})
			if la.Title == "" && la.Body == "" {
				la.Body = la.Alert
			}
			la.LiveActivity = cloneLiveActivity(c.LiveActivity)
		}
		if !j.Timestamp.IsZero() {
			la.Timestamp = j.Timestamp.Unix()
		}
		r.IOS = la
	}
	return r
}

// cloneLiveActivity copies la's top level, so that the Platform does not
// share its maps' keys with the job.
func cloneLiveActivity(la *pushjob.LiveActivity) *pushjob.LiveActivity {
	if la == nil {
		return nil
	}
	c := *la
	c.ContentState = maps.Clone(la.ContentState)
	c.Attributes = maps.Clone(la.Attributes)
	return &c
}

// layer is one level of content: the defaults, the job's push, or one of its
// platform blocks.
type layer struct {
	alert, title, body, sound, category, threadID, channelID string
	clickAction, icon                                        string
	badge                                                    *pushjob.Badge
	mutableContent                                           bool
	data                                                     map[string]any
	pushType                                                 pushjob.PushType
	locKey, titleLocKey                                      string
	locArgs, titleLocArgs                                    []string
}

func (p *Platform) apply(l layer) {
	if l.alert != "" {
		p.Alert = l.alert
		if l.body == "" {
			p.Body = l.alert
		}
	}
	set(&p.Title, l.title)
	set(&p.Body, l.body)
	set(&p.Sound, l.sound)
	set(&p.Category, l.category)
	set(&p.ThreadID, l.threadID)
	set(&p.ChannelID, l.channelID)
	set(&p.ClickAction, l.clickAction)
	set(&p.Icon, l.icon)
	if l.badge != nil {
		b := *l.badge
		p.Badge = &b
	}
	if l.mutableContent {
		p.MutableContent = true
	}
	if l.pushType != "" {
		p.PushType = l.pushType
	}
	set(&p.LocKey, l.locKey)
	set(&p.TitleLocKey, l.titleLocKey)
	if len(l.locArgs) > 0 {
		p.LocArgs = slices.Clone(l.locArgs)
	}
	if len(l.titleLocArgs) > 0 {
		p.TitleLocArgs = slices.Clone(l.titleLocArgs)
	}
	if len(l.data) > 0 {
		if p.Data == nil {
			p.Data = make(map[string]any, len(l.data))
		}
		maps.Copy(p.Data, l.data)
	}
}

func (p *Platform) applyPlatform(c *pushjob.PlatformContent) {
	if c == nil {
		return
	}
	p.apply(layer{
		alert: c.Alert, title: c.Title, body: c.Body, sound: c.Sound,
		category: c.Category, threadID: c.ThreadID, channelID: c.ChannelID,
		clickAction: c.ClickAction, icon: c.Icon, badge: c.Badge, mutableContent: c.MutableContent, data: c.Data,
		pushType: c.PushType, locKey: c.LocKey, locArgs: c.LocArgs,
		titleLocKey: c.TitleLocKey, titleLocArgs: c.TitleLocArgs,
	})
}

func set(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

// vars are the values of a job's template variables.
type vars struct {
	convID, fromClientID, timestamp string
}

func templateVars(j pushjob.Job) vars {
	v := vars{convID: j.ConversationID, fromClientID: j.FromClientID}
	// A job without a timestamp expands ${timestamp} to nothing rather than
	// to year 1 in milliseconds.
	if !j.Timestamp.IsZero() {
		v.timestamp = strconv.FormatInt(j.Timestamp.UnixMilli(), 10)
	}
	return v
}

// expand replaces the known ${name} variables in s; unknown ones, and a "${"
// without a closing brace, stay as written.
func (v vars) expand(s string) string {
	i := strings.Index(s, "${")
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i >= 0 {
		b.WriteString(s[:i])
		s = s[i:]
		end := strings.IndexByte(s, '}')
		if end < 0 {
			break
		}
		if val, ok := v.lookup(s[2:end]); ok {
			b.WriteString(val)
		} else {
			b.WriteString(s[:end+1])
		}
		s = s[end+1:]
		i = strings.Index(s, "${")
	}
	b.WriteString(s)
	return b.String()
}

func (v vars) lookup(name string) (string, bool) {
	switch name {
	case "convId":
		return v.convID, true
	case "fromClientId":
		return v.fromClientID, true
	case "timestamp":
		return v.timestamp, true
	}
	return "", false
}

// expandData returns a copy of data with every string value expanded, at any
// depth; keys are left alone.
func (v vars) expandData(data map[string]any) map[string]any {
	if data == nil {
		return nil
	}
	out := make(map[string]any, len(data))
	for k, val := range data {
		out[k] = v.expandValue(val)
	}
	return out
}

func (v vars) expandValue(val any) any {
	switch val := val.(type) {
	case string:
		return v.expand(val)
	case map[string]any:
		return v.expandData(val)
	case []any:
		out := make([]any, len(val))
		for i, e := range val {
			out[i] = v.expandValue(e)
		}
		return out
	}
	return val
}

// Collapses reports whether j's notifications replace their conversation's
// earlier one (push.collapse).
func Collapses(j pushjob.Job) bool {
	return j.Push != nil && j.Push.Collapse
}

// Tag is what a notification of j replaces on the device: for a job that
// collapses, its conversation's earlier notification; otherwise only an
// earlier copy of the same message (a retry after a crash between the
// provider's answer and its record), so different messages of a chat each
// show. Every provider's collapse or tag field follows it.
func Tag(j pushjob.Job) string {
	if Collapses(j) {
		return j.ConversationID
	}
	return j.MessageID
}
