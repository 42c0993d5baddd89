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

const appTopic = "com.example.chat"

// withAppTopic configures the app's default APNs topic.
func withAppTopic(topic string) option {
	return func(w *world) { w.apns.topic = topic }
}

// iphoneTopic registers an APNs device with its own apns_topic.
func (w *world) iphoneTopic(id, client, topic string, n int) string {
	w.t.Helper()
	tok := apnsToken(n)
	w.register(installations.Installation{
		ID: id, AppID: "default", ClientID: client, Provider: installations.APNs, Token: tok,
		APNsEnv: installations.Production, APNsTopic: topic,
	})
	return tok
}

func iosJob(id string, pt pushjob.PushType, prio pushjob.Priority, recipients ...string) pushjob.Job {
	j := newJob(id, recipients...)
	j.Priority = prio
	if pt != "" {
		j.Push = &pushjob.Content{IOS: &pushjob.PlatformContent{PushType: pt}}
		if pt == pushjob.PushTypeLiveActivity {
			j.Push.IOS.LiveActivity = &pushjob.LiveActivity{Event: pushjob.LiveActivityUpdate, ContentState: map[string]any{"n": 1}}
		}
	}
	return j
}

// Each push type and job priority gets Apple's headers: apns-push-type,
// apns-priority (5 for low jobs and always for background), and the topic
// (.voip for VoIP).
func TestProcessAPNsHeaders(t *testing.T) {
	tests := []struct {
		name     string
		pt       pushjob.PushType
		prio     pushjob.Priority
		topic    string // the installation's apns_topic
		wantType string
		wantPrio int
		wantTop  string
	}{
		{"alert normal", "", pushjob.PriorityNormal, "", "alert", 10, ""},
		{"alert high", pushjob.PushTypeAlert, pushjob.PriorityHigh, "", "alert", 10, ""},
		{"alert low", "", pushjob.PriorityLow, "", "alert", 5, ""},
		{"alert keeps the installation's topic", "", pushjob.PriorityNormal, "com.example.chat.beta", "alert", 10, "com.example.chat.beta"},
		{"background high is still 5", pushjob.PushTypeBackground, pushjob.PriorityHigh, "", "background", 5, ""},
		{"background low", pushjob.PushTypeBackground, pushjob.PriorityLow, "", "background", 5, ""},
		{"voip app topic", pushjob.PushTypeVoIP, pushjob.PriorityHigh, "", "voip", 10, "com.example.chat.voip"},
		{"voip low", pushjob.PushTypeVoIP, pushjob.PriorityLow, "", "voip", 5, "com.example.chat.voip"},
		{"voip installation topic", pushjob.PushTypeVoIP, pushjob.PriorityNormal, "com.example.chat.beta", "voip", 10, "com.example.chat.beta.voip"},
		{"voip installation voip topic kept", pushjob.PushTypeVoIP, pushjob.PriorityNormal, "com.example.chat.voip", "voip", 10, "com.example.chat.voip"},
		{"complication", pushjob.PushTypeComplication, pushjob.PriorityNormal, "", "complication", 10, "com.example.chat.complication"},
		{"complication low", pushjob.PushTypeComplication, pushjob.PriorityLow, "", "complication", 5, "com.example.chat.complication"},
		{"location", pushjob.PushTypeLocation, pushjob.PriorityHigh, "", "location", 10, "com.example.chat.location-query"},
		{"location low", pushjob.PushTypeLocation, pushjob.PriorityLow, "", "location", 5, "com.example.chat.location-query"},
		{"pushtotalk low is still 10", pushjob.PushTypePushToTalk, pushjob.PriorityLow, "", "pushtotalk", 10, "com.example.chat.voip-ptt"},
		{"pushtotalk from the installation's voip topic", pushjob.PushTypePushToTalk, pushjob.PriorityNormal, "com.example.chat.voip", "pushtotalk", 10, "com.example.chat.voip-ptt"},
		{"widgets", pushjob.PushTypeWidgets, pushjob.PriorityNormal, "", "widgets", 10, "com.example.chat.push-type.widgets"},
		{"widgets low", pushjob.PushTypeWidgets, pushjob.PriorityLow, "", "widgets", 5, "com.example.chat.push-type.widgets"},
		{"controls", pushjob.PushTypeControls, pushjob.PriorityHigh, "", "controls", 10, "com.example.chat.push-type.controls"},
		{"fileprovider high is still 5", pushjob.PushTypeFileProvider, pushjob.PriorityHigh, "", "fileprovider", 5, "com.example.chat.pushkit.fileprovider"},
		{"liveactivity", pushjob.PushTypeLiveActivity, pushjob.PriorityHigh, "", "liveactivity", 10, "com.example.chat.push-type.liveactivity"},
		{"liveactivity low", pushjob.PushTypeLiveActivity, pushjob.PriorityLow, "", "liveactivity", 5, "com.example.chat.push-type.liveactivity"},
		{"liveactivity installation topic kept", pushjob.PushTypeLiveActivity, pushjob.PriorityNormal, "com.example.chat.beta.push-type.liveactivity", "liveactivity", 10, "com.example.chat.beta.push-type.liveactivity"},
		{"liveactivity installation topic", pushjob.PushTypeLiveActivity, pushjob.PriorityNormal, "com.example.chat.beta", "liveactivity", 10, "com.example.chat.beta.push-type.liveactivity"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, withAppTopic(appTopic))
			tok := w.iphoneTopic("iphone-alice", "alice", tc.topic, 1)
			job := iosJob("msg-1", tc.pt, tc.prio, "alice")
			job.TTLSeconds = 60
			sameMap(t, "report", outcomes(w.process(job, true)), map[string]string{"alice/iphone-alice": "delivered"})
			sent := w.apns.to(tok)
			if len(sent) != 1 {
				t.Fatalf("%d pushes, want 1", len(sent))
			}
			r := sent[0]
			if r.PushType != tc.wantType || r.Priority != tc.wantPrio || r.Topic != tc.wantTop {
				t.Errorf("push type %q priority %d topic %q, want %q %d %q", r.PushType, r.Priority, r.Topic, tc.wantType, tc.wantPrio, tc.wantTop)
			}
			if r.CollapseID != "msg-1" || !r.Expiration.Equal(t0.Add(60e9)) {
				t.Errorf("collapse id %q expiration %v", r.CollapseID, r.Expiration)
			}
		})
	}
}

// A background push is silent: content-available alone in aps, custom
// data beside it, and no badge, so a badge "Increment" from the app's
// defaults counts nothing.
func TestProcessBackgroundPush(t *testing.T) {
	w := newWorld(t, withConfig(func(c *dispatch.Config) {
		a := c.Apps["default"]
		a.Defaults.Badge = &pushjob.Badge{Increment: true}
		a.Defaults.Sound = "default"
		c.Apps["default"] = a
	}))
	tok := w.iphone("iphone-alice", "alice", installations.Production, 1)
	carol := w.android("android-carol", "carol")
	job := iosJob("msg-1", pushjob.PushTypeBackground, pushjob.PriorityNormal, "alice", "carol")
	job.Push.IOS.Data = map[string]any{"sync": "inbox"}
	sameMap(t, "report", outcomes(w.process(job, true)), map[string]string{
		"alice/iphone-alice": "delivered", "carol/android-carol": "delivered",
	})
	r := w.apns.to(tok)[0]
	var v map[string]json.RawMessage
	if err := json.Unmarshal(r.Payload, &v); err != nil {
		t.Fatal(err)
	}
	if string(v["aps"]) != `{"content-available":1}` || string(v["sync"]) != `"inbox"` || len(v) != 2 {
		t.Errorf("payload %s", r.Payload)
	}
	if r.PushType != "background" || r.Priority != 5 {
		t.Errorf("push type %q priority %d", r.PushType, r.Priority)
	}
	if in := w.installation("alice", "iphone-alice"); in.Badge != 0 {
		t.Errorf("stored badge %d after a background push, want 0", in.Badge)
	}
	// Android still shows the notification, with its badge.
	if m := w.fcm.to(carol)[0]; m.Notification == nil && (m.Android == nil || m.Android.Notification == nil) {
		t.Errorf("android message lost its notification: %+v", m)
	}
}

func TestProcessVoIPPayloadLimit(t *testing.T) {
	w := newWorld(t, withAppTopic(appTopic))
	tok := w.iphone("iphone-alice", "alice", installations.Production, 1)
	job := iosJob("msg-1", pushjob.PushTypeVoIP, pushjob.PriorityHigh, "alice")
	job.Push.IOS.Body = strings.Repeat("a", 4096)
	job.Push.IOS.Data = map[string]any{"call": "c1"}
	sameMap(t, "report", outcomes(w.process(job, true)), map[string]string{"alice/iphone-alice": "delivered"})
	r := w.apns.to(tok)[0]
	if len(r.Payload) <= 4096 || len(r.Payload) > 5120 || !strings.Contains(string(r.Payload), `"body":"`+job.Push.IOS.Body+`"`) {
		t.Errorf("VoIP payload of %d bytes, want the whole 4096-byte body within 5120", len(r.Payload))
	}
}

// With no topic anywhere, a VoIP push has nowhere to go: rejected, not
// sent to the alert topic.
func TestProcessVoIPWithoutTopic(t *testing.T) {
	w := newWorld(t)
	w.iphone("iphone-alice", "alice", installations.Production, 1)
	rep := w.process(iosJob("msg-1", pushjob.PushTypeVoIP, pushjob.PriorityHigh, "alice"), true)
	sameMap(t, "report", outcomes(rep), map[string]string{"alice/iphone-alice": "rejected"})
	if d := device(t, rep, "alice", "iphone-alice"); !strings.Contains(d.Reason, "no APNs topic") {
		t.Errorf("reason %q", d.Reason)
	}
	if n := w.apns.count(); n != 0 {
		t.Errorf("%d pushes sent", n)
	}
}

// A token Apple refuses for a .voip topic pushd derived is no VoIP token,
// not a dead one: it stays valid for message pushes. A token registered
// with the .voip topic itself is marked as usual.
func TestProcessVoIPTokenNotForTopicKeepsToken(t *testing.T) {
	w := newWorld(t, withAppTopic(appTopic))
	alert := w.iphone("iphone-alice", "alice", installations.Production, 1)
	voip := w.iphoneTopic("voip-bob", "bob", "com.example.chat.voip", 2)
	w.apns.answer = func(r apns.Request, n int) apns.Result {
		return apns.Result{Outcome: outcome.InvalidToken, Status: 400, Reason: "DeviceTokenNotForTopic"}
	}
	rep := w.process(iosJob("msg-1", pushjob.PushTypeVoIP, pushjob.PriorityHigh, "alice", "bob"), true)
	sameMap(t, "report", outcomes(rep), map[string]string{
		"alice/iphone-alice": "rejected", "bob/voip-bob": "invalid_token",
	})
	if d := device(t, rep, "alice", "iphone-alice"); !strings.Contains(d.Reason, "DeviceTokenNotForTopic for com.example.chat.voip") {
		t.Errorf("reason %q", d.Reason)
	}
	if !w.installation("alice", "iphone-alice").Valid {
		t.Error("a VoIP push marked a message token invalid")
	}
	if w.installation("bob", "voip-bob").Valid {
		t.Error("a dead VoIP token stayed valid")
	}
	if len(w.apns.to(alert)) != 1 || len(w.apns.to(voip)) != 1 {
		t.Errorf("pushes: alice %d, bob %d", len(w.apns.to(alert)), len(w.apns.to(voip)))
	}
}

// Localized alerts and mutable-content reach Apple under Apple's names; a
// localized payload over the limit is rejected, never sent.
func TestProcessLocalizedAlert(t *testing.T) {
	w := newWorld(t)
	tok := w.iphone("iphone-alice", "alice", installations.Production, 1)
	job := newJob("msg-1", "alice")
	job.Push = &pushjob.Content{IOS: &pushjob.PlatformContent{
		LocKey: "MSG_FROM", LocArgs: []string{"Zoe", "hi"}, TitleLocKey: "CONV", TitleLocArgs: []string{"Team"},
		MutableContent: true, Category: "MESSAGE",
	}}
	sameMap(t, "report", outcomes(w.process(job, true)), map[string]string{"alice/iphone-alice": "delivered"})
	var v struct {
		APS struct {
			Alert struct {
				LocKey       string   `json:"loc-key"`
				LocArgs      []string `json:"loc-args"`
				TitleLocKey  string   `json:"title-loc-key"`
				TitleLocArgs []string `json:"title-loc-args"`
			} `json:"alert"`
			Mutable  int    `json:"mutable-content"`
			Category string `json:"category"`
			Thread   string `json:"thread-id"`
		} `json:"aps"`
	}
	p := w.apns.to(tok)[0].Payload
	if err := json.Unmarshal(p, &v); err != nil {
		t.Fatal(err)
	}
	a := v.APS.Alert
	if a.LocKey != "MSG_FROM" || strings.Join(a.LocArgs, ",") != "Zoe,hi" || a.TitleLocKey != "CONV" ||
		strings.Join(a.TitleLocArgs, ",") != "Team" || v.APS.Mutable != 1 || v.APS.Category != "MESSAGE" || v.APS.Thread != "conv-1" {
		t.Errorf("payload %s", p)
	}

	big := newJob("msg-2", "alice")
	big.Push = &pushjob.Content{IOS: &pushjob.PlatformContent{
		LocKey: "K", LocArgs: []string{strings.Repeat("x", pushjob.MaxTextLen), strings.Repeat("y", 100)},
	}}
	if err := big.Validate(); err != nil {
		t.Fatal(err)
	}
	rep := w.process(big, true)
	sameMap(t, "too large", outcomes(rep), map[string]string{"alice/iphone-alice": "rejected"})
	if d := device(t, rep, "alice", "iphone-alice"); !strings.Contains(d.Reason, "APNs payload") {
		t.Errorf("reason %q", d.Reason)
	}
	if n := len(w.apns.to(tok)); n != 1 {
		t.Errorf("%d pushes, want only the first message's", n)
	}
}
