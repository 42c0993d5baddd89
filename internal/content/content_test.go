package content

import (
	"reflect"
	"testing"
	"time"

	"github.com/pushd/pushd/pushjob"
)

var sent = time.Date(2024, 5, 6, 7, 8, 9, 123_000_000, time.UTC)

func testJob() pushjob.Job {
	return pushjob.Job{
		AppID:          "default",
		MessageID:      "m1",
		ConversationID: "conv-1",
		FromClientID:   "alice",
		Recipients:     []string{"bob"},
		Timestamp:      sent,
	}
}

func TestExpand(t *testing.T) {
	v := templateVars(testJob())
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"${fromClientId}", "alice"},
		{"${fromClientId} in ${convId} at ${timestamp}", "alice in conv-1 at 1714979289123"},
		{"${fromClientId}${fromClientId}", "alicealice"},
		{"${unknown} stays", "${unknown} stays"},
		{"${ConvId} is case-sensitive", "${ConvId} is case-sensitive"},
		{"$convId and $ {convId} are not variables", "$convId and $ {convId} are not variables"},
		{"unterminated ${convId", "unterminated ${convId"},
		{"${convId} then unterminated ${", "conv-1 then unterminated ${"},
		{"${${convId}}", "${${convId}}"}, // the name is "${convId", unknown
		{"中文 ${fromClientId} 🎉", "中文 alice 🎉"},
	} {
		if got := v.expand(tc.in); got != tc.want {
			t.Errorf("expand(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}

	j := testJob()
	j.Timestamp = time.Time{}
	if got := templateVars(j).expand("at ${timestamp}."); got != "at ." {
		t.Errorf("zero timestamp: got %q, want %q", got, "at .")
	}
}

func TestResolveDefaults(t *testing.T) {
	d := Defaults{
		Title:    "${fromClientId}",
		Body:     "New message in ${convId}",
		Sound:    "default",
		Category: "MESSAGE",
		Badge:    &pushjob.Badge{Increment: true},
		Data: map[string]any{
			"from":   "${fromClientId}",
			"n":      3,
			"nested": map[string]any{"at": "${timestamp}", "list": []any{"${convId}", 1}},
		},
	}
	r := Resolve(d, testJob())
	want := Platform{
		Title:    "alice",
		Body:     "New message in conv-1",
		Sound:    "default",
		Category: "MESSAGE",
		ThreadID: "conv-1",
		Badge:    &pushjob.Badge{Increment: true},
		Data: map[string]any{
			"from":   "alice",
			"n":      3,
			"nested": map[string]any{"at": "1714979289123", "list": []any{"conv-1", 1}},
		},
	}
	if !reflect.DeepEqual(r.IOS, want) {
		t.Errorf("IOS:\n got %+v\nwant %+v", r.IOS, want)
	}
	if !reflect.DeepEqual(r.Android, want) {
		t.Errorf("Android:\n got %+v\nwant %+v", r.Android, want)
	}
	// The defaults themselves are a template for every job: untouched.
	if d.Data["from"] != "${fromClientId}" {
		t.Errorf("Resolve modified the defaults' data: %v", d.Data)
	}
}

func TestResolveJobContentIsNotExpanded(t *testing.T) {
	j := testJob()
	j.Push = &pushjob.Content{Body: "I typed ${convId} literally", Data: map[string]any{"k": "${fromClientId}"}}
	r := Resolve(Defaults{Title: "${fromClientId}"}, j)
	if r.IOS.Body != "I typed ${convId} literally" || r.IOS.Data["k"] != "${fromClientId}" {
		t.Errorf("job content was expanded: body %q, data %v", r.IOS.Body, r.IOS.Data)
	}
	if r.IOS.Title != "alice" {
		t.Errorf("default title = %q, want alice", r.IOS.Title)
	}
}

func TestResolveOverrides(t *testing.T) {
	defaults := Defaults{
		Title: "${fromClientId}", Body: "New message", Sound: "default", Category: "MSG",
		Badge: &pushjob.Badge{Value: 1},
		Data:  map[string]any{"a": "default", "b": "default"},
	}
	badge := func(n int) *pushjob.Badge { return &pushjob.Badge{Value: n} }
	tests := []struct {
		name         string
		push         *pushjob.Content
		ios, android Platform
	}{
		{
			name: "no push: defaults",
			ios: Platform{Title: "alice", Body: "New message", Sound: "default", Category: "MSG", ThreadID: "conv-1",
				Badge: badge(1), Data: map[string]any{"a": "default", "b": "default"}},
		},
		{
			name: "push fields replace defaults one by one",
			push: &pushjob.Content{Body: "hi", Sound: "ding.caf", Badge: badge(7), ThreadID: "t", Data: map[string]any{"b": "push", "c": "push"}},
			ios: Platform{Title: "alice", Body: "hi", Sound: "ding.caf", Category: "MSG", ThreadID: "t",
				Badge: badge(7), Data: map[string]any{"a": "default", "b": "push", "c": "push"}},
		},
		{
			name: "alert without body replaces the default body",
			push: &pushjob.Content{Alert: "hello"},
			ios: Platform{Alert: "hello", Title: "alice", Body: "hello", Sound: "default", Category: "MSG", ThreadID: "conv-1",
				Badge: badge(1), Data: map[string]any{"a": "default", "b": "default"}},
		},
		{
			name: "body wins over alert in the same layer",
			push: &pushjob.Content{Alert: "short", Body: "long"},
			ios: Platform{Alert: "short", Title: "alice", Body: "long", Sound: "default", Category: "MSG", ThreadID: "conv-1",
				Badge: badge(1), Data: map[string]any{"a": "default", "b": "default"}},
		},
		{
			name: "platform blocks override the push per platform",
			push: &pushjob.Content{
				Title: "T", Body: "B", Badge: badge(2), Data: map[string]any{"a": "push"},
				IOS:     &pushjob.PlatformContent{Body: "ios body", Badge: &pushjob.Badge{Increment: true}, MutableContent: true, Category: "IOSCAT", Data: map[string]any{"a": "ios"}},
				Android: &pushjob.PlatformContent{Title: "android title", ChannelID: "chat", Sound: "beep", ThreadID: "ignored-on-android", Data: map[string]any{"d": "android"}},
			},
			ios: Platform{Title: "T", Body: "ios body", Sound: "default", Category: "IOSCAT", ThreadID: "conv-1",
				Badge: &pushjob.Badge{Increment: true}, MutableContent: true, Data: map[string]any{"a": "ios", "b": "default"}},
			android: Platform{Title: "android title", Body: "B", Sound: "beep", Category: "MSG", ThreadID: "ignored-on-android",
				ChannelID: "chat", Badge: badge(2), Data: map[string]any{"a": "push", "b": "default", "d": "android"}},
		},
		{
			name: "platform alert replaces the push body",
			push: &pushjob.Content{Body: "B", Android: &pushjob.PlatformContent{Alert: "android alert"}},
			ios: Platform{Title: "alice", Body: "B", Sound: "default", Category: "MSG", ThreadID: "conv-1",
				Badge: badge(1), Data: map[string]any{"a": "default", "b": "default"}},
			android: Platform{Alert: "android alert", Title: "alice", Body: "android alert", Sound: "default", Category: "MSG", ThreadID: "conv-1",
				Badge: badge(1), Data: map[string]any{"a": "default", "b": "default"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j := testJob()
			j.Push = tc.push
			r := Resolve(defaults, j)
			if tc.android.ThreadID == "" {
				tc.android = tc.ios
			}
			if !reflect.DeepEqual(r.IOS, tc.ios) {
				t.Errorf("IOS:\n got %+v\nwant %+v", r.IOS, tc.ios)
			}
			if !reflect.DeepEqual(r.Android, tc.android) {
				t.Errorf("Android:\n got %+v\nwant %+v", r.Android, tc.android)
			}
		})
	}
}

func TestResolveAlertOnly(t *testing.T) {
	j := testJob()
	j.Push = &pushjob.Content{Alert: "ping"}
	r := Resolve(Defaults{}, j)
	if r.IOS.Body != "ping" || r.IOS.Title != "" || r.Android.Body != "ping" {
		t.Errorf("alert only: got iOS %+v, Android %+v; want body ping", r.IOS, r.Android)
	}
}

func TestResolveDoesNotAlias(t *testing.T) {
	j := testJob()
	b := &pushjob.Badge{Value: 3}
	j.Push = &pushjob.Content{Badge: b, Data: map[string]any{"k": "v"}}
	r := Resolve(Defaults{}, j)
	r.IOS.Data["added"] = true
	r.IOS.Badge.Value = 99
	if _, ok := j.Push.Data["added"]; ok {
		t.Error("adding to the resolved data changed the job's data")
	}
	if _, ok := r.Android.Data["added"]; ok {
		t.Error("adding to the iOS data changed the Android data")
	}
	if b.Value != 3 {
		t.Error("changing the resolved badge changed the job's badge")
	}
}
