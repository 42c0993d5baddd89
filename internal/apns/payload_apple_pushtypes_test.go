package apns

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/content"
	"github.com/pushd/pushd/pushjob"
)

// Each of Apple's other push types gets its own payload shape; the exact
// aps object is what Apple documents for the type.
func TestAPNsPayloadOtherPushTypes(t *testing.T) {
	alerty := content.Platform{Title: "t", Body: "b", Sound: "default", Category: "MSG", ThreadID: "conv-1", MutableContent: true, LocKey: "K"}
	with := func(pt pushjob.PushType, data map[string]any) content.Platform {
		p := alerty
		p.PushType, p.Data = pt, data
		return p
	}
	la := func(l pushjob.LiveActivity) *pushjob.LiveActivity { return &l }
	checkPayloads(t, []payloadCase{
		{"complication is alert-shaped", content.Platform{PushType: pushjob.PushTypeComplication, Body: "3 unread", Sound: "default", ThreadID: "conv-1"},
			intp(3), `{"aps":{"alert":{"body":"3 unread"},"sound":"default","thread-id":"conv-1","badge":3}}`},
		{"location is an empty aps and data", with(pushjob.PushTypeLocation, map[string]any{"query": "q1"}),
			intp(4), `{"aps":{},"query":"q1"}`},
		{"pushtotalk is an empty aps and data", with(pushjob.PushTypePushToTalk, map[string]any{"speaker": "alice", "channel": "c1"}),
			intp(4), `{"aps":{},"channel":"c1","speaker":"alice"}`},
		{"widgets is content-changed", with(pushjob.PushTypeWidgets, nil), intp(4), `{"aps":{"content-changed":true}}`},
		{"controls is content-changed", with(pushjob.PushTypeControls, map[string]any{"k": 1}), nil, `{"aps":{"content-changed":true},"k":1}`},
		{"fileprovider is custom data only", with(pushjob.PushTypeFileProvider, map[string]any{"container-identifier": "NSFileProviderRootContainerItemIdentifier"}),
			intp(4), `{"aps":{},"container-identifier":"NSFileProviderRootContainerItemIdentifier"}`},
		{"liveactivity update with alert and sound",
			content.Platform{PushType: pushjob.PushTypeLiveActivity, Title: "Delivery", Body: "2 min away", Sound: "chime.aiff", Timestamp: 1700000000,
				Category: "dropped", ThreadID: "dropped",
				LiveActivity: la(pushjob.LiveActivity{Event: "update", ContentState: map[string]any{"eta": 2, "driver": "Zoe"}, StaleDate: 1700000300})},
			intp(9), `{"aps":{"timestamp":1700000000,"event":"update","content-state":{"driver":"Zoe","eta":2},"stale-date":1700000300,` +
				`"alert":{"title":"Delivery","body":"2 min away","sound":"chime.aiff"}}}`},
		{"liveactivity end",
			content.Platform{PushType: pushjob.PushTypeLiveActivity, Timestamp: 1700000000, Data: map[string]any{"x": "y"},
				LiveActivity: la(pushjob.LiveActivity{Event: "end", ContentState: map[string]any{"eta": 0}, DismissalDate: 1700003600})},
			nil, `{"aps":{"timestamp":1700000000,"event":"end","content-state":{"eta":0},"dismissal-date":1700003600},"x":"y"}`},
		{"liveactivity start",
			content.Platform{PushType: pushjob.PushTypeLiveActivity, Body: "Call started", Timestamp: 1700000000,
				LiveActivity: la(pushjob.LiveActivity{Event: "start", ContentState: map[string]any{}, AttributesType: "CallAttributes", Attributes: map[string]any{"room": "<r1>"}})},
			nil, `{"aps":{"timestamp":1700000000,"event":"start","content-state":{},"attributes-type":"CallAttributes","attributes":{"room":"<r1>"},` +
				`"alert":{"body":"Call started"}}}`},
	})
}

// A liveactivity push's body is trimmed to fit like an alert's.
func TestAPNsLiveActivityTrimsBody(t *testing.T) {
	body := make([]rune, 3000)
	for i := range body {
		body[i] = 'é'
	}
	p := content.Platform{PushType: pushjob.PushTypeLiveActivity, Body: string(body), Timestamp: 1,
		LiveActivity: &pushjob.LiveActivity{Event: "update", ContentState: map[string]any{"a": 1}}}
	got, err := payloadOnce(p, nil, PayloadLimit(p.PushType))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) > MaxPayload || !json.Valid(got) {
		t.Errorf("payload of %d bytes, valid %v", len(got), json.Valid(got))
	}
}

func TestAPNsLiveActivityNeedsLiveActivity(t *testing.T) {
	if _, err := NewPayloadTemplate(content.Platform{PushType: pushjob.PushTypeLiveActivity}, MaxPayload); err == nil {
		t.Error("liveactivity template without live_activity built")
	}
}

// A Live Activity job's resolved content makes Apple's payload.
func TestLiveActivityFromResolvedJob(t *testing.T) {
	d := content.Defaults{Title: "${fromClientId}", Body: "New message", Sound: "default", Category: "MESSAGE", Badge: &pushjob.Badge{Increment: true}, Data: map[string]any{"d": 1}}
	j := pushjob.Job{MessageID: "m1", ConversationID: "conv-1", FromClientID: "alice", Recipients: []string{"bob"}, Timestamp: time.Unix(1700000000, 123e6)}
	j.Push = &pushjob.Content{Alert: "shared", IOS: &pushjob.PlatformContent{
		PushType: pushjob.PushTypeLiveActivity, Alert: "2 min away", Sound: "chime.aiff", Category: "X",
		LiveActivity: &pushjob.LiveActivity{Event: "update", ContentState: map[string]any{"eta": 2}},
	}}
	r := content.Resolve(d, j)
	got, err := payloadOnce(r.IOS, nil, MaxPayload)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"aps":{"timestamp":1700000000,"event":"update","content-state":{"eta":2},"alert":{"body":"2 min away","sound":"chime.aiff"}},"d":1}`; string(got) != want {
		t.Errorf("payload %s\nwant    %s", got, want)
	}
}
