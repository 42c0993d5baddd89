package content

import (
	"reflect"
	"testing"

	"github.com/pushd/pushd/pushjob"
)

func TestResolvePushTypeAndLocalization(t *testing.T) {
	d := Defaults{Title: "${fromClientId}", Body: "New message", Sound: "default", Category: "MESSAGE", Badge: &pushjob.Badge{Increment: true}, Data: map[string]any{"d": 1}}

	j := testJob()
	args := []string{"Alice", "hi"}
	j.Push = &pushjob.Content{IOS: &pushjob.PlatformContent{
		PushType: pushjob.PushTypeVoIP, LocKey: "MSG", LocArgs: args, TitleLocKey: "T", TitleLocArgs: []string{"x"}, MutableContent: true,
	}}
	r := Resolve(d, j)
	ios := r.IOS
	if ios.PushType != pushjob.PushTypeVoIP || ios.LocKey != "MSG" || !reflect.DeepEqual(ios.LocArgs, args) ||
		ios.TitleLocKey != "T" || !reflect.DeepEqual(ios.TitleLocArgs, []string{"x"}) || !ios.MutableContent {
		t.Errorf("ios = %+v", ios)
	}
	if ios.Body != "New message" || ios.Title != "alice" || ios.ThreadID != "conv-1" {
		t.Errorf("ios text = %q %q %q", ios.Title, ios.Body, ios.ThreadID)
	}
	ios.LocArgs[0] = "changed"
	if args[0] != "Alice" {
		t.Error("Resolve aliases the job's loc_args")
	}
	if a := r.Android; a.PushType != "" || a.LocKey != "" {
		t.Errorf("android got iOS fields: %+v", a)
	}

	// Background: the defaults' text, sound and badge are dropped for
	// iOS, data kept; Android keeps everything.
	j.Push = &pushjob.Content{Alert: "shared", IOS: &pushjob.PlatformContent{PushType: pushjob.PushTypeBackground, Data: map[string]any{"sync": true}}}
	r = Resolve(d, j)
	want := Platform{PushType: pushjob.PushTypeBackground, Data: map[string]any{"d": 1, "sync": true}}
	if !reflect.DeepEqual(r.IOS, want) {
		t.Errorf("background ios = %+v, want %+v", r.IOS, want)
	}
	if r.Android.Body != "shared" || r.Android.Badge == nil || r.Android.Sound != "default" {
		t.Errorf("background job's android = %+v", r.Android)
	}
}
