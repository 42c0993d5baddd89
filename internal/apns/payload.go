package apns

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"

	"github.com/pushd/pushd/internal/content"
	"github.com/pushd/pushd/pushjob"
)

// Apple's payload size limits, in bytes of encoded JSON.
const (
	MaxPayload     = 4096 // alert and background pushes
	MaxVoIPPayload = 5120 // VoIP pushes
)

// PayloadLimit is Apple's payload limit for a push type.
func PayloadLimit(t pushjob.PushType) int {
	if t == pushjob.PushTypeVoIP {
		return MaxVoIPPayload
	}
	return MaxPayload
}

// ellipsis marks a truncated body.
const ellipsis = "…"

// badgeKey is how a badge enters the aps dictionary; badgeRoom is the most
// it can add, with a comma and the longest int.
const (
	badgeKey  = `"badge":`
	badgeRoom = len(`,`+badgeKey) + len("-9223372036854775808")
)

// PayloadTemplate is one job's APNs payload for one platform shape, encoded
// once; Payload then only splices in a device's badge. A template is safe
// for concurrent use.
//
// The payload is {"aps":{"alert":{"title":..,"title-loc-key":..,
// "title-loc-args":[..],"body":..,"loc-key":..,"loc-args":[..]},"sound":..,
// "category":..,"thread-id":..,"mutable-content":1,"badge":n}, ...} with
// empty fields left out and the custom data keys, sorted, beside "aps". A
// data key "aps" is dropped: custom data must not replace what pushd
// builds. A background push's aps is {"content-available":1} alone, a
// widgets or controls push's {"content-changed":true}, and a location,
// pushtotalk or fileprovider push's {} (its custom data is the message);
// none takes a badge. A liveactivity push's aps is {"timestamp":..,
// "event":..,"content-state":{..},"dismissal-date":..,"stale-date":..,
// "attributes-type":..,"attributes":{..},"alert":{"title":..,"body":..,
// "sound":..}}, without a badge.
type PayloadTemplate struct {
	maxBytes int
	// enc is the payload without body and badge; the body goes at bodyAt
	// and the badge at badgeAt (just before the aps dictionary closes).
	enc             []byte
	bodyAt, badgeAt int
	hasBody         bool
	apsEmpty        bool
	noBadge         bool
	// body is the alert body encoded, without quotes: whole when whole is
	// set, else as much of it as could ever fit.
	body  []byte
	whole bool
	// cutAt holds the encoded size of the body up to each place it may be
	// cut for some badge (see cuts). Encoding is rune by rune, so
	// body[:cutAt[k]] is the encoding of the body's prefix up to that
	// place. It is computed only when some badge could make the full body
	// overflow.
	cutAt []int
}

// NewPayloadTemplate encodes p's payload for pushes of at most maxBytes. It
// fails when even an alert body cut to nothing would not fit, because of a
// long title or large custom data: the caller records that as rejected.
func NewPayloadTemplate(p content.Platform, maxBytes int) (*PayloadTemplate, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("apns: payload limit %d: must be positive", maxBytes)
	}
	t := &PayloadTemplate{maxBytes: maxBytes}
	var laSound string
	switch {
	case p.PushType.Silent():
		// Silent: Apple wants nothing to show, only content-available
		// (background) or content-changed (widgets, controls).
		p = content.Platform{PushType: p.PushType, Data: p.Data}
		t.noBadge = true
	case p.PushType == pushjob.PushTypeLiveActivity:
		// A Live Activity's alert is title, body and sound, the sound
		// inside the alert dictionary.
		laSound = p.Sound
		p = content.Platform{
			PushType: p.PushType, Alert: p.Alert, Title: p.Title, Body: p.Body,
			LiveActivity: p.LiveActivity, Timestamp: p.Timestamp, Data: p.Data,
		}
		t.noBadge = true
	}
	body := p.Body
	if body == "" && p.Title == "" {
		body = p.Alert
	}

	b := make([]byte, 0, 256)
	b = append(b, `{"aps":{`...)
	n := 0
	field := func(name string) {
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, `":`...)
	}
	var vb bytes.Buffer
	enc := json.NewEncoder(&vb)
	enc.SetEscapeHTML(false)
	encode := func(what string, v any) error {
		vb.Reset()
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("apns: %s: %w", what, err)
		}
		b = append(b, bytes.TrimSuffix(vb.Bytes(), []byte{'\n'})...)
		return nil
	}
	if p.PushType == pushjob.PushTypeLiveActivity {
		la := p.LiveActivity
		if la == nil {
			return nil, fmt.Errorf("apns: liveactivity push without live_activity")
		}
		field("timestamp")
		b = strconv.AppendInt(b, p.Timestamp, 10)
		field("event")
		b = appendString(b, la.Event)
		if la.ContentState != nil {
			field("content-state")
			if err := encode("content-state", la.ContentState); err != nil {
				return nil, err
			}
		}
		if la.DismissalDate != 0 {
			field("dismissal-date")
			b = strconv.AppendInt(b, la.DismissalDate, 10)
		}
		if la.StaleDate != 0 {
			field("stale-date")
			b = strconv.AppendInt(b, la.StaleDate, 10)
		}
		if la.AttributesType != "" {
			field("attributes-type")
			b = appendString(b, la.AttributesType)
		}
		if la.Attributes != nil {
			field("attributes")
			if err := encode("attributes", la.Attributes); err != nil {
				return nil, err
			}
		}
	}
	if p.Title != "" || body != "" || p.LocKey != "" || p.TitleLocKey != "" || laSound != "" {
		field("alert")
		b = append(b, '{')
		m := 0
		key := func(name string) {
			if m > 0 {
				b = append(b, ',')
			}
			m++
			b = append(b, '"')
			b = append(b, name...)
			b = append(b, `":`...)
		}
		if p.Title != "" {
			key("title")
			b = appendString(b, p.Title)
		}
		if p.TitleLocKey != "" {
			key("title-loc-key")
			b = appendString(b, p.TitleLocKey)
			if len(p.TitleLocArgs) > 0 {
				key("title-loc-args")
				b = appendStrings(b, p.TitleLocArgs)
			}
		}
		if body != "" {
			key("body")
			b = append(b, '"')
			t.bodyAt, t.hasBody = len(b), true
			b = append(b, '"')
		}
		if p.LocKey != "" {
			// The device shows the localized string; a body beside it
			// is what older clients and service extensions read, and
			// is trimmed to fit like any other.
			key("loc-key")
			b = appendString(b, p.LocKey)
			if len(p.LocArgs) > 0 {
				key("loc-args")
				b = appendStrings(b, p.LocArgs)
			}
		}
		if laSound != "" {
			key("sound")
			b = appendString(b, laSound)
		}
		b = append(b, '}')
	}
	switch p.PushType {
	case pushjob.PushTypeBackground:
		field("content-available")
		b = append(b, '1')
	case pushjob.PushTypeWidgets, pushjob.PushTypeControls:
		field("content-changed")
		b = append(b, "true"...)
	}
	if p.Sound != "" {
		field("sound")
		b = appendString(b, p.Sound)
	}
	if p.Category != "" {
		field("category")
		b = appendString(b, p.Category)
	}
	if p.ThreadID != "" {
		field("thread-id")
		b = appendString(b, p.ThreadID)
	}
	if p.MutableContent {
		field("mutable-content")
		b = append(b, '1')
	}
	t.apsEmpty = n == 0
	t.badgeAt = len(b)
	b = append(b, '}')

	keys := make([]string, 0, len(p.Data))
	for k := range p.Data {
		if k != "aps" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		b = append(b, ',')
		b = appendString(b, k)
		b = append(b, ':')
		if err := encode(fmt.Sprintf("data key %q", k), p.Data[k]); err != nil {
			return nil, err
		}
	}
	b = append(b, '}')
	t.enc = b

	room := maxBytes - len(t.enc) // for the encoded body, without a badge
	switch {
	case !t.hasBody:
		if room < 0 {
			return nil, t.tooLarge(0)
		}
		t.whole = true
	case len(body)*len(`\u0000`)+badgeRoom <= room:
		// Fits whatever it holds and whatever the badge.
		t.body, t.whole = appendStringBody(nil, body), true
	default:
		// A badge takes up to badgeRoom, so the cut for any badge lies
		// in [room-badgeRoom-len(ellipsis), room].
		offsets, encoded := cuts(body, room-badgeRoom-len(ellipsis), room)
		last := len(offsets) - 1
		t.body = appendStringBody(make([]byte, 0, encoded[last]), body[:offsets[last]])
		t.whole = offsets[last] == len(body)
		if !t.whole && room < len(ellipsis) {
			return nil, t.tooLarge(0)
		}
		if !t.whole || len(t.body)+badgeRoom > room {
			t.cutAt = encoded
		}
	}
	return t, nil
}

func (t *PayloadTemplate) tooLarge(badgeLen int) error {
	need := len(t.enc) + badgeLen
	if t.hasBody {
		need += len(ellipsis)
	}
	return &SizeError{Need: need, Max: t.maxBytes}
}

// SizeError reports a payload that does not fit even with its alert body cut
// to an ellipsis. Need is the size of that smallest payload.
type SizeError struct {
	Need, Max int
}

func (e *SizeError) Error() string {
	return fmt.Sprintf("APNs payload needs %d bytes even with its alert body cut, over the %d-byte limit: shorten the title or the custom data", e.Need, e.Max)
}

// Payload returns the payload with badge (nil for none). When the full body
// would not fit, it is cut at the last character boundary that leaves room
// for "…", so the payload is at most the template's limit; it fails, with a
// *SizeError, only when even "…" alone does not fit beside this badge.
func (t *PayloadTemplate) Payload(badge *int) ([]byte, error) {
	var num [20]byte
	var digits []byte
	badgeLen := 0
	if t.noBadge {
		badge = nil
	}
	if badge != nil {
		digits = strconv.AppendInt(num[:0], int64(*badge), 10)
		badgeLen = len(badgeKey) + len(digits)
		if !t.apsEmpty {
			badgeLen++
		}
	}

	body := t.body
	truncated := false
	if budget := t.maxBytes - len(t.enc) - badgeLen; !t.whole || len(body) > budget {
		if !t.hasBody || budget < len(ellipsis) || t.cutAt == nil {
			// cutAt is only missing when the whole body fits beside any
			// badge; the check stays so that a broken invariant fails
			// here, not at Apple.
			return nil, t.tooLarge(badgeLen)
		}
		// The last cut that leaves room for the ellipsis. cutAt starts
		// below the window every badge's budget falls in, so there is one.
		k, _ := slices.BinarySearch(t.cutAt, budget-len(ellipsis)+1)
		body = body[:t.cutAt[k-1]]
		truncated = true
	}

	size := len(t.enc) + len(body) + badgeLen
	if truncated {
		size += len(ellipsis)
	}
	out := make([]byte, 0, size)
	if t.hasBody {
		out = append(out, t.enc[:t.bodyAt]...)
		out = append(out, body...)
		if truncated {
			out = append(out, ellipsis...)
		}
		out = append(out, t.enc[t.bodyAt:t.badgeAt]...)
	} else {
		out = append(out, t.enc[:t.badgeAt]...)
	}
	if badge != nil {
		if !t.apsEmpty {
			out = append(out, ',')
		}
		out = append(out, badgeKey...)
		out = append(out, digits...)
	}
	return append(out, t.enc[t.badgeAt:]...), nil
}

// EmbeddedPayload is p's payload without a badge, for a provider that
// carries Apple's payload in its own message and adds the badge itself
// (FCM's apns block). Room is left for the largest badge, so that any
// device's fits without cutting the body again. takesBadge is false for
// push types whose aps has no badge.
func EmbeddedPayload(p content.Platform) (payload []byte, takesBadge bool, err error) {
	pt := p.PushType
	if pt == "" {
		pt = pushjob.PushTypeAlert
	}
	t, err := NewPayloadTemplate(p, PayloadLimit(pt)-badgeRoom)
	if err != nil {
		return nil, false, err
	}
	payload, err = t.Payload(nil)
	if err != nil {
		return nil, false, err
	}
	return payload, !t.noBadge, nil
}

// appendStrings appends ss as a JSON array of strings.
func appendStrings(dst []byte, ss []string) []byte {
	dst = append(dst, '[')
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, s)
	}
	return append(dst, ']')
}
