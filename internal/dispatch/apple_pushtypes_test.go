package dispatch_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/pushd/pushd/internal/apns"
	"github.com/pushd/pushd/internal/dispatch"
	"github.com/pushd/pushd/internal/installations"
	"github.com/pushd/pushd/internal/outcome"
	"github.com/pushd/pushd/pushjob"
)

// Each of Apple's other push types reaches the fake APNs with its topic,
// push type, priority and exact aps object; the defaults' badge counts
// nothing on the silent types.
func TestProcessApplePushTypes(t *testing.T) {
	tests := []struct {
		name     string
		ios      pushjob.PlatformContent
		prio     pushjob.Priority
		wantTop  string
		wantPrio int
		wantAps  string
		wantData map[string]string
		badged   bool
	}{
		{"complication", pushjob.PlatformContent{PushType: pushjob.PushTypeComplication, Body: "3 unread"}, pushjob.PriorityNormal,
			appTopic + ".complication", 10, `{"alert":{"title":"zoe","body":"3 unread"},"sound":"default","thread-id":"conv-1","badge":1}`, nil, true},
		{"location", pushjob.PlatformContent{PushType: pushjob.PushTypeLocation, Data: map[string]any{"query": "q1"}}, pushjob.PriorityNormal,
			appTopic + ".location-query", 10, `{}`, map[string]string{"query": `"q1"`}, false},
		{"pushtotalk", pushjob.PlatformContent{PushType: pushjob.PushTypePushToTalk, Data: map[string]any{"speaker": "alice"}}, pushjob.PriorityLow,
			appTopic + ".voip-ptt", 10, `{}`, map[string]string{"speaker": `"alice"`}, false},
		{"widgets", pushjob.PlatformContent{PushType: pushjob.PushTypeWidgets}, pushjob.PriorityLow,
			appTopic + ".push-type.widgets", 5, `{"content-changed":true}`, nil, false},
		{"controls", pushjob.PlatformContent{PushType: pushjob.PushTypeControls}, pushjob.PriorityHigh,
			appTopic + ".push-type.controls", 10, `{"content-changed":true}`, nil, false},
		{"fileprovider", pushjob.PlatformContent{PushType: pushjob.PushTypeFileProvider, Data: map[string]any{"container-identifier": "NSFileProviderRootContainerItemIdentifier"}},
			pushjob.PriorityHigh, appTopic + ".pushkit.fileprovider", 5, `{}`,
			map[string]string{"container-identifier": `"NSFileProviderRootContainerItemIdentifier"`}, false},
		{"liveactivity", pushjob.PlatformContent{PushType: pushjob.PushTypeLiveActivity, Title: "Delivery", Body: "2 min away",
			LiveActivity: &pushjob.LiveActivity{Event: "update", ContentState: map[string]any{"eta": 2}, StaleDate: 1800000000}},
			pushjob.PriorityNormal, appTopic + ".push-type.liveactivity", 10,
			`{"timestamp":` + itoa(t0.Unix()) + `,"event":"update","content-state":{"eta":2},"stale-date":1800000000,"alert":{"title":"Delivery","body":"2 min away"}}`,
			nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, withAppTopic(appTopic), withConfig(func(c *dispatch.Config) {
				a := c.Apps["default"]
				a.Defaults.Badge = &pushjob.Badge{Increment: true}
				a.Defaults.Sound = "default"
				c.Apps["default"] = a
			}))
			tok := w.iphone("iphone-alice", "alice", installations.Production, 1)
			job := newJob("msg-1", "alice")
			job.Priority = tc.prio
			ios := tc.ios
			job.Push = &pushjob.Content{IOS: &ios}
			if err := job.Validate(); err != nil {
				t.Fatal(err)
			}
			sameMap(t, "report", outcomes(w.process(job, true)), map[string]string{"alice/iphone-alice": "delivered"})
			sent := w.apns.to(tok)
			if len(sent) != 1 {
				t.Fatalf("%d pushes, want 1", len(sent))
			}
			r := sent[0]
			if r.PushType != string(ios.PushType) || r.Priority != tc.wantPrio || r.Topic != tc.wantTop {
				t.Errorf("push type %q priority %d topic %q, want %q %d %q", r.PushType, r.Priority, r.Topic, ios.PushType, tc.wantPrio, tc.wantTop)
			}
			var v map[string]json.RawMessage
			if err := json.Unmarshal(r.Payload, &v); err != nil {
				t.Fatal(err)
			}
			if string(v["aps"]) != tc.wantAps {
				t.Errorf("aps %s\nwant %s", v["aps"], tc.wantAps)
			}
			if len(v) != 1+len(tc.wantData) {
				t.Errorf("payload %s: want aps and %v only", r.Payload, tc.wantData)
			}
			for k, want := range tc.wantData {
				if string(v[k]) != want {
					t.Errorf("data %q = %s, want %s", k, v[k], want)
				}
			}
			if b := w.installation("alice", "iphone-alice").Badge; (b != 0) != tc.badged {
				t.Errorf("stored badge %d, badged %v", b, tc.badged)
			}
		})
	}
}

// The token safeguard holds for every suffixed type: Apple refusing a
// token for a topic pushd derived keeps the token; one registered with
// that very topic is marked.
func TestProcessSuffixedTopicKeepsToken(t *testing.T) {
	for _, pt := range []pushjob.PushType{pushjob.PushTypeLiveActivity, pushjob.PushTypePushToTalk, pushjob.PushTypeWidgets, pushjob.PushTypeFileProvider} {
		t.Run(string(pt), func(t *testing.T) {
			w := newWorld(t, withAppTopic(appTopic))
			w.iphone("iphone-alice", "alice", installations.Production, 1)
			suffix := map[pushjob.PushType]string{
				pushjob.PushTypeLiveActivity: ".push-type.liveactivity", pushjob.PushTypePushToTalk: ".voip-ptt",
				pushjob.PushTypeWidgets: ".push-type.widgets", pushjob.PushTypeFileProvider: ".pushkit.fileprovider",
			}[pt]
			w.iphoneTopic("own-bob", "bob", appTopic+suffix, 2)
			w.apns.answer = func(r apns.Request, n int) apns.Result {
				return apns.Result{Outcome: outcome.InvalidToken, Status: 400, Reason: "DeviceTokenNotForTopic"}
			}
			rep := w.process(iosJob("msg-1", pt, pushjob.PriorityNormal, "alice", "bob"), true)
			sameMap(t, "report", outcomes(rep), map[string]string{"alice/iphone-alice": "rejected", "bob/own-bob": "invalid_token"})
			if d := device(t, rep, "alice", "iphone-alice"); !strings.Contains(d.Reason, "for "+appTopic+suffix+": token kept") {
				t.Errorf("reason %q", d.Reason)
			}
			if !w.installation("alice", "iphone-alice").Valid {
				t.Error("a derived-topic push marked a message token invalid")
			}
			if w.installation("bob", "own-bob").Valid {
				t.Error("a dead token registered for the topic stayed valid")
			}
		})
	}
}

// With no topic anywhere, a suffixed push type has nowhere to go.
func TestProcessSuffixedTypeWithoutTopic(t *testing.T) {
	w := newWorld(t)
	w.iphone("iphone-alice", "alice", installations.Production, 1)
	rep := w.process(iosJob("msg-1", pushjob.PushTypeWidgets, pushjob.PriorityHigh, "alice"), true)
	sameMap(t, "report", outcomes(rep), map[string]string{"alice/iphone-alice": "rejected"})
	if d := device(t, rep, "alice", "iphone-alice"); !strings.Contains(d.Reason, "widgets push: no APNs topic") {
		t.Errorf("reason %q", d.Reason)
	}
	if n := w.apns.count(); n != 0 {
		t.Errorf("%d pushes sent", n)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }
