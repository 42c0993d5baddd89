package pushjob

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pushd/pushd/internal/fielderr"
)

// Limits that Validate enforces. Byte lengths count UTF-8 bytes, as the
// providers' payload limits do.
const (
	// MaxMessageIDLen bounds message_id: it becomes part of the asynq task
	// id and of the providers' collapse ids.
	MaxMessageIDLen = 128
	// MaxIDLen bounds conversation ids and client ids.
	MaxIDLen = 256
	// MaxTTL is the longest ttl_seconds: APNs and FCM keep a push for at
	// most four weeks, so a longer one would only be cut short.
	MaxTTL = 28 * 24 * time.Hour
	// MaxTextLen bounds alert, title and body. APNs payloads are truncated
	// to fit later; this only refuses text no notification could show.
	MaxTextLen = 4096
	// MaxDataLen bounds the JSON encoding of each data object: data cannot
	// be truncated, and neither provider takes a payload over 4 KiB.
	MaxDataLen = 4096
	// maxAttrLen bounds short attributes: sound, category, thread and
	// channel ids.
	maxAttrLen = 256
	// maxURLLen bounds a URL or an icon's name.
	maxURLLen = 2048
	// maxLocArgs bounds loc_args and title_loc_args: each fills one %@ of
	// a localized string.
	maxLocArgs = 16
	// maxListErrors is how many element errors one list reports before it
	// summarises the rest, so that 10 000 bad recipients make a readable
	// 400 body rather than a megabyte of it.
	maxListErrors = 10
)

// FieldError is one broken rule. Field is the JSON path of the offending
// value ("recipients[2]", "push.ios.badge"), or "" when the error concerns
// the document as a whole. It is the type every pushd API reports fields
// with.
type FieldError = fielderr.Error

// ValidationError lists every problem found in a job, so that a client
// fixes them all in one round trip. Decode and Validate return it; the
// HTTP API sends Fields as its 400 body.
type ValidationError struct {
	Fields []FieldError `json:"fields"`
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("pushjob: invalid job: ")
	for i, f := range e.Fields {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(f.Error())
	}
	return b.String()
}

// fieldErrors collects errors in the order they are found.
type fieldErrors []FieldError

func (fe *fieldErrors) add(field, rule string) {
	*fe = append(*fe, FieldError{Field: field, Rule: rule})
}

// text checks an id (see fielderr.TextRule).
func (fe *fieldErrors) text(field, s string, maxLen int, required bool) {
	if rule := fielderr.TextRule(s, maxLen, required); rule != "" {
		fe.add(field, rule)
	}
}

// err returns the collected errors as a *ValidationError, or a nil error
// (not a typed nil pointer) when there are none.
func (fe fieldErrors) err() error {
	if len(fe) == 0 {
		return nil
	}
	return &ValidationError{Fields: fe}
}

// listErrors caps the errors reported for the elements of one list.
type listErrors struct {
	fe    *fieldErrors
	field string
	n     int
}

func (l *listErrors) add(i int, rule string) {
	l.n++
	if l.n <= maxListErrors {
		l.fe.add(l.field+"["+strconv.Itoa(i)+"]", rule)
	}
}

func (l *listErrors) close() {
	if l.n > maxListErrors {
		l.fe.add(l.field, fmt.Sprintf("%d more invalid elements not listed", l.n-maxListErrors))
	}
}

// Validate checks every rule and returns all broken ones at once as a
// *ValidationError, or nil. It does not depend on the clock: a job that
// has already expired is valid, and the worker drops it as expired.
// An empty AppID or Priority is valid; Normalize fills them in.
func (j *Job) Validate() error {
	var fe fieldErrors

	fe.text("message_id", j.MessageID, MaxMessageIDLen, true)
	fe.text("conversation_id", j.ConversationID, MaxIDLen, true)
	switch {
	case j.AppID == "":
	case !fielderr.Text(j.AppID):
		fe.add("app_id", fielderr.RuleText)
	case !validAppID(j.AppID):
		fe.add("app_id", "must match [A-Za-z0-9_.-]{1,64}")
	}
	fe.text("from_client_id", j.FromClientID, MaxIDLen, false)

	switch n := len(j.Recipients); {
	case n == 0:
		fe.add("recipients", "required")
	case n > MaxRecipients:
		fe.add("recipients", fmt.Sprintf("at most %d recipients", MaxRecipients))
	}
	checkClientIDs(&fe, "recipients", j.Recipients, true)

	if len(j.Mentions) > MaxRecipients {
		fe.add("mentions", fmt.Sprintf("at most %d mentions", MaxRecipients))
	}
	checkClientIDs(&fe, "mentions", j.Mentions, false)

	if p := j.Priority; p != "" && p != PriorityHigh && p != PriorityNormal && p != PriorityLow {
		fe.add("priority", `one of "high", "normal", "low"`)
	}

	switch {
	case j.TTLSeconds < 0:
		fe.add("ttl_seconds", "must not be negative")
	case j.TTLSeconds > int(MaxTTL/time.Second):
		fe.add("ttl_seconds", fmt.Sprintf("at most %d (28 days)", int(MaxTTL/time.Second)))
	}
	if j.TTLSeconds != 0 && j.ExpiresAt != nil {
		fe.add("expires_at", "set ttl_seconds or expires_at, not both")
	}

	if c := j.Push; c != nil {
		checkLens(&fe, "push", MaxTextLen, attr{"alert", c.Alert}, attr{"title", c.Title}, attr{"body", c.Body})
		checkBadge(&fe, "push.badge", c.Badge)
		checkLens(&fe, "push", maxAttrLen, attr{"sound", c.Sound}, attr{"category", c.Category}, attr{"thread_id", c.ThreadID})
		// Shared data goes to both platforms, so both providers' reserved
		// keys apply.
		checkData(&fe, "push.data", c.Data, true, true)
		if p := c.IOS; p != nil {
			checkPlatform(&fe, "push.ios", p, platformIOS)
			checkIOS(&fe, "push.ios", p)
			checkData(&fe, "push.ios.data", p.Data, true, false)
		}
		if p := c.Android; p != nil {
			checkPlatform(&fe, "push.android", p, platformAndroid)
			checkData(&fe, "push.android.data", p.Data, false, true)
		}
		if p := c.Web; p != nil {
			checkPlatform(&fe, "push.web", p, platformWeb)
			checkData(&fe, "push.web.data", p.Data, false, true)
			if p.ClickAction != "" && !httpsURL(p.ClickAction) {
				fe.add("push.web.click_action", "an absolute https URL")
			}
		}
	}
	return fe.err()
}

// checkClientIDs checks each id of a list; recipients must also be
// distinct, since a duplicate would be pushed twice.
func checkClientIDs(fe *fieldErrors, field string, ids []string, distinct bool) {
	l := listErrors{fe: fe, field: field}
	var seen map[string]int
	if distinct {
		seen = make(map[string]int, len(ids))
	}
	for i, id := range ids {
		switch {
		case id == "":
			l.add(i, "must not be empty")
			continue
		default:
			if rule := fielderr.TextRule(id, MaxIDLen, true); rule != "" {
				l.add(i, rule)
			}
		}
		if !distinct {
			continue
		}
		if first, ok := seen[id]; ok {
			l.add(i, fmt.Sprintf("duplicate of %s[%d]", field, first))
			continue
		}
		seen[id] = i
	}
	l.close()
}

// attr is one string field of push content, named as in JSON.
type attr struct{ name, v string }

// checkLens checks each attribute against max bytes.
func checkLens(fe *fieldErrors, prefix string, max int, attrs ...attr) {
	for _, a := range attrs {
		if len(a.v) > max {
			fe.add(prefix+"."+a.name, fmt.Sprintf("at most %d bytes", max))
		}
	}
}

func checkBadge(fe *fieldErrors, field string, b *Badge) {
	if b != nil && !b.Increment && b.Value < 0 {
		fe.add(field, "must not be negative")
	}
}

// Platforms a PlatformContent field is for, as a set.
const (
	platformIOS = 1 << iota
	platformAndroid
	platformWeb
)

func checkPlatform(fe *fieldErrors, prefix string, p *PlatformContent, platform int) {
	checkLens(fe, prefix, MaxTextLen, attr{"alert", p.Alert}, attr{"title", p.Title}, attr{"body", p.Body})
	checkBadge(fe, prefix+".badge", p.Badge)
	checkLens(fe, prefix, maxAttrLen, attr{"sound", p.Sound}, attr{"category", p.Category}, attr{"thread_id", p.ThreadID}, attr{"channel_id", p.ChannelID},
		attr{"loc_key", p.LocKey}, attr{"title_loc_key", p.TitleLocKey})
	checkLens(fe, prefix, maxURLLen, attr{"click_action", p.ClickAction}, attr{"icon", p.Icon})
	checkLocArgs(fe, prefix+".loc_args", p.LocArgs, p.LocKey, "loc_key")
	checkLocArgs(fe, prefix+".title_loc_args", p.TitleLocArgs, p.TitleLocKey, "title_loc_key")
	// A field set where the platform has no use for it would be dropped
	// without a word; saying so saves a day of wondering. The exceptions,
	// marked "kept", were accepted and ignored before: jobs that send one
	// block to both phones, already queued or not, stay valid.
	const mobile = platformIOS | platformAndroid
	for _, f := range []struct {
		name string
		set  bool
		on   int // the platforms it is for
	}{
		{"badge", p.Badge != nil, mobile},
		{"sound", p.Sound != "", mobile},
		{"category", p.Category != "", mobile},        // kept on Android
		{"thread_id", p.ThreadID != "", mobile},       // kept on Android
		{"mutable_content", p.MutableContent, mobile}, // kept on Android
		{"channel_id", p.ChannelID != "", mobile},     // kept on iOS
		{"loc_key", p.LocKey != "", mobile}, {"loc_args", len(p.LocArgs) > 0, mobile},
		{"title_loc_key", p.TitleLocKey != "", mobile}, {"title_loc_args", len(p.TitleLocArgs) > 0, mobile},
		{"click_action", p.ClickAction != "", platformAndroid | platformWeb},
		{"icon", p.Icon != "", platformAndroid | platformWeb},
		{"push_type", p.PushType != "", platformIOS},
		{"live_activity", p.LiveActivity != nil, platformIOS},
	} {
		if f.set && f.on&platform == 0 {
			fe.add(prefix+"."+f.name, "not for this platform: "+platformNames(f.on)+" only")
		}
	}
}

func platformNames(set int) string {
	var names []string
	for _, p := range []struct {
		bit  int
		name string
	}{{platformIOS, "iOS"}, {platformAndroid, "Android"}, {platformWeb, "web"}} {
		if set&p.bit != 0 {
			names = append(names, p.name)
		}
	}
	return strings.Join(names, " and ")
}

// httpsURL reports whether s is an absolute https URL, the only link FCM
// opens from a web notification.
func httpsURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "https" && u.Host != ""
}

// rulePushType is the rule an unknown push_type breaks.
const rulePushType = `one of "alert", "background", "voip", "complication", "location", "pushtotalk", "widgets", "controls", "fileprovider", "liveactivity"`

// ruleMDM is the rule push_type "mdm" breaks: an MDM push only tells a
// managed device to call its MDM server, and Apple accepts it only with
// that server's MDM push certificate and the device's PushMagic.
const ruleMDM = `"mdm" is not for apps: MDM pushes are sent by device-management servers with their MDM push certificate`

// checkIOS checks the iOS-only fields of the ios block.
func checkIOS(fe *fieldErrors, prefix string, p *PlatformContent) {
	switch p.PushType {
	case "", PushTypeAlert, PushTypeVoIP, PushTypeComplication:
	case PushTypeBackground, PushTypeLocation, PushTypePushToTalk, PushTypeWidgets, PushTypeControls, PushTypeFileProvider:
		// These pushes are silent: Apple drops or throttles one that
		// carries an alert, sound or badge, so asking for one is a
		// mistake worth hearing about. (Alert text from the app's
		// defaults or the shared push block is dropped silently.)
		rule := fmt.Sprintf("not with push_type %q: a %s push shows nothing", p.PushType, p.PushType)
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"alert", p.Alert != ""}, {"title", p.Title != ""}, {"body", p.Body != ""},
			{"badge", p.Badge != nil}, {"sound", p.Sound != ""}, {"category", p.Category != ""},
			{"mutable_content", p.MutableContent},
			{"loc_key", p.LocKey != ""}, {"title_loc_key", p.TitleLocKey != ""},
		} {
			if f.set {
				fe.add(prefix+"."+f.name, rule)
			}
		}
	case PushTypeMDM:
		fe.add(prefix+".push_type", ruleMDM)
	case PushTypeLiveActivity:
		// A Live Activity's alert is title, body and sound only.
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"badge", p.Badge != nil}, {"category", p.Category != ""}, {"mutable_content", p.MutableContent},
			{"loc_key", p.LocKey != ""}, {"title_loc_key", p.TitleLocKey != ""},
		} {
			if f.set {
				fe.add(prefix+"."+f.name, `not with push_type "liveactivity": its alert has only title, body and sound`)
			}
		}
	default:
		fe.add(prefix+".push_type", rulePushType)
	}
	checkLiveActivity(fe, prefix, p)
}

// checkLiveActivity checks live_activity: it belongs to a liveactivity
// push, which needs it.
func checkLiveActivity(fe *fieldErrors, prefix string, p *PlatformContent) {
	field := prefix + ".live_activity"
	la := p.LiveActivity
	if p.PushType != PushTypeLiveActivity {
		if la != nil {
			fe.add(field, `only with push_type "liveactivity"`)
		}
		return
	}
	if la == nil {
		fe.add(field, `required with push_type "liveactivity"`)
		return
	}
	switch la.Event {
	case "":
		fe.add(field+".event", `required: "start", "update" or "end"`)
	case LiveActivityStart, LiveActivityUpdate, LiveActivityEnd:
	default:
		fe.add(field+".event", `one of "start", "update", "end"`)
	}
	if la.ContentState == nil && (la.Event == LiveActivityStart || la.Event == LiveActivityUpdate) {
		fe.add(field+".content_state", "required to "+la.Event+" a Live Activity")
	}
	checkData(fe, field+".content_state", la.ContentState, false, false)
	if la.DismissalDate < 0 {
		fe.add(field+".dismissal_date", "unix seconds, not negative")
	}
	if la.StaleDate < 0 {
		fe.add(field+".stale_date", "unix seconds, not negative")
	}
	if la.Event == LiveActivityStart {
		if la.AttributesType == "" {
			fe.add(field+".attributes_type", "required to start a Live Activity")
		}
		if la.Attributes == nil {
			fe.add(field+".attributes", "required to start a Live Activity")
		}
	} else {
		if la.AttributesType != "" {
			fe.add(field+".attributes_type", `only with event "start"`)
		}
		if la.Attributes != nil {
			fe.add(field+".attributes", `only with event "start"`)
		}
	}
	checkLens(fe, field, maxAttrLen, attr{"attributes_type", la.AttributesType})
	checkData(fe, field+".attributes", la.Attributes, false, false)
}

// checkLocArgs checks the arguments of a localized string: they need
// their key, and each fills a %@ of a short string.
func checkLocArgs(fe *fieldErrors, field string, args []string, key, keyName string) {
	if len(args) == 0 {
		return
	}
	if key == "" {
		fe.add(field, "needs "+keyName)
	}
	if len(args) > maxLocArgs {
		fe.add(field, fmt.Sprintf("at most %d arguments", maxLocArgs))
	}
	l := listErrors{fe: fe, field: field}
	for i, a := range args {
		if len(a) > MaxTextLen {
			l.add(i, fmt.Sprintf("at most %d bytes", MaxTextLen))
		}
	}
	l.close()
}

// checkData checks custom keys. APNs puts them beside "aps" at the top of
// the payload, so "aps" would clobber the notification itself; FCM refuses
// the whole message when a data key is one of its reserved words.
func checkData(fe *fieldErrors, field string, data map[string]any, apns, fcm bool) {
	if data == nil {
		return
	}
	for _, k := range slices.Sorted(maps.Keys(data)) {
		switch {
		case k == "":
			fe.add(field, "keys must not be empty")
		case apns && k == "aps":
			fe.add(field, `key "aps" is reserved by APNs`)
		case fcm && FCMReservedKey(k):
			fe.add(field, fmt.Sprintf("key %q is reserved by FCM", k))
		}
	}
	b, err := json.Marshal(data)
	switch {
	case err != nil:
		fe.add(field, "values must be JSON-encodable: "+err.Error())
	case len(b) > MaxDataLen:
		fe.add(field, fmt.Sprintf("at most %d bytes as JSON", MaxDataLen))
	}
}

// FCMReservedKey reports whether FCM refuses k as a data key: "from",
// "message_type", and anything starting with "google" or "gcm".
func FCMReservedKey(k string) bool {
	return k == "from" || k == "message_type" ||
		strings.HasPrefix(k, "google") || strings.HasPrefix(k, "gcm")
}

// validAppID reports whether s matches [A-Za-z0-9_.-]{1,64}.
func validAppID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !idByte(s[i]) {
			return false
		}
	}
	return true
}

// idByte reports whether c may appear unescaped in app and task ids.
func idByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '_' || c == '.' || c == '-'
}

// ApplyDefaults fills in DefaultApp and PriorityNormal, and leaves a zero
// Timestamp zero: a worker running a job enqueued without one must not
// take its own time for the message's.
func (j *Job) ApplyDefaults() {
	if j.AppID == "" {
		j.AppID = DefaultApp
	}
	if j.Priority == "" {
		j.Priority = PriorityNormal
	}
}

// Normalize fills in defaults: DefaultApp, PriorityNormal, and the current
// time for a zero Timestamp. NewTask normalizes the job it carries, so a
// worker sees the Timestamp the TTL counts from.
func (j *Job) Normalize() {
	j.ApplyDefaults()
	if j.Timestamp.IsZero() {
		j.Timestamp = time.Now().UTC()
	}
}

// Expiry returns when the push becomes pointless: ExpiresAt, or Timestamp
// plus TTLSeconds. It is zero when the job has no expiry, and also when it
// has a TTL but no Timestamp to count from (call Normalize first).
func (j Job) Expiry() time.Time {
	switch {
	case j.ExpiresAt != nil:
		return *j.ExpiresAt
	case j.TTLSeconds > 0 && !j.Timestamp.IsZero():
		return j.Timestamp.Add(time.Duration(j.TTLSeconds) * time.Second)
	}
	return time.Time{}
}
