package content

import (
	"reflect"
	"testing"
	"time"

	"github.com/pushd/pushd/pushjob"
)

func TestResolveOtherPushTypes(t *testing.T) {
	d := Defaults{Title: "${fromClientId}", Body: "New message", Sound: "default", Category: "MESSAGE", Badge: &pushjob.Badge{Increment: true}, Data: map[string]any{"d": 1}}
	for _, pt := range []pushjob.PushType{pushjob.PushTypeLocation, pushjob.PushTypePushToTalk, pushjob.PushTypeWidgets, pushjob.PushTypeControls, pushjob.PushTypeFileProvider} {
		j := testJob()
		j.Push = &pushjob.Content{Alert: "shared", IOS: &pushjob.PlatformContent{PushType: pt, Data: map[string]any{"k": "v"}}}
		r := Resolve(d, j)
		want := Platform{PushType: pt, Data: map[string]any{"d": 1, "k": "v"}}
		if !reflect.DeepEqual(r.IOS, want) {
			t.Errorf("%s ios = %+v, want %+v", pt, r.IOS, want)
		}
		if r.Android.Body != "shared" || r.Android.Badge == nil {
			t.Errorf("%s job's android = %+v", pt, r.Android)
		}
	}

	// Complication keeps the alert shape, defaults included.
	j := testJob()
	j.Push = &pushjob.Content{IOS: &pushjob.PlatformContent{PushType: pushjob.PushTypeComplication}}
	if r := Resolve(d, j); r.IOS.Body != "New message" || r.IOS.Badge == nil || r.IOS.Sound != "default" {
		t.Errorf("complication ios = %+v", r.IOS)
	}

	// Live Activity: only the ios block's own title, body and sound; the
	// job's timestamp in seconds; live_activity copied.
	j = testJob()
	j.Timestamp = time.Unix(1700000000, 123e6)
	state := map[string]any{"eta": 2}
	j.Push = &pushjob.Content{Alert: "shared", IOS: &pushjob.PlatformContent{
		PushType: pushjob.PushTypeLiveActivity, Alert: "2 min away", Sound: "chime.aiff", Category: "X",
		LiveActivity: &pushjob.LiveActivity{Event: "update", ContentState: state},
	}}
	r := Resolve(d, j)
	want := Platform{
		PushType: pushjob.PushTypeLiveActivity, Alert: "2 min away", Body: "2 min away", Sound: "chime.aiff", Timestamp: 1700000000,
		LiveActivity: &pushjob.LiveActivity{Event: "update", ContentState: map[string]any{"eta": 2}}, Data: map[string]any{"d": 1},
	}
	if !reflect.DeepEqual(r.IOS, want) {
		t.Errorf("liveactivity ios = %+v, want %+v", r.IOS, want)
	}
	r.IOS.LiveActivity.ContentState["eta"] = 9
	if state["eta"] != 2 {
		t.Error("Resolve aliases the job's content_state")
	}
	r.IOS.LiveActivity.ContentState["eta"] = 2
	// internal/apns TestLiveActivityFromResolvedJob checks its payload.
}
