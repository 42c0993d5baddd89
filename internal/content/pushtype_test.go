package content

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/pushd/pushd/pushjob"
)

func TestAPNsPayloadPushTypes(t *testing.T) {
	tests := []struct {
		name  string
		p     Platform
		badge *int
		want  string
	}{
		{"background is content-available alone",
			Platform{
				PushType: pushjob.PushTypeBackground, Title: "t", Body: "b", Sound: "default", Category: "MSG",
				ThreadID: "conv-1", MutableContent: true, LocKey: "K", Data: map[string]any{"sync": "inbox"},
			},
			intp(4), `{"aps":{"content-available":1},"sync":"inbox"}`},
		{"background without data", Platform{PushType: pushjob.PushTypeBackground}, nil, `{"aps":{"content-available":1}}`},
		{"voip keeps the alert shape", Platform{PushType: pushjob.PushTypeVoIP, Body: "Alice is calling", Data: map[string]any{"call": "c1"}},
			nil, `{"aps":{"alert":{"body":"Alice is calling"}},"call":"c1"}`},
		{"alert type is the default shape", Platform{PushType: pushjob.PushTypeAlert, Body: "b", MutableContent: true},
			intp(1), `{"aps":{"alert":{"body":"b"},"mutable-content":1,"badge":1}}`},
		{"localized body",
			Platform{LocKey: "MSG_FROM", LocArgs: []string{"Alice", `say "hi"`}},
			nil, `{"aps":{"alert":{"loc-key":"MSG_FROM","loc-args":["Alice","say \"hi\""]}}}`},
		{"localized title and body with fallback text",
			Platform{
				Title: "Alice", TitleLocKey: "CONV_TITLE", TitleLocArgs: []string{"Team"},
				Body: "hello", LocKey: "MSG", LocArgs: []string{"Alice"}, ThreadID: "conv-1", Category: "MSG",
			},
			intp(2), `{"aps":{"alert":{"title":"Alice","title-loc-key":"CONV_TITLE","title-loc-args":["Team"],"body":"hello","loc-key":"MSG","loc-args":["Alice"]},"category":"MSG","thread-id":"conv-1","badge":2}}`},
		{"title loc key alone", Platform{TitleLocKey: "T"}, nil, `{"aps":{"alert":{"title-loc-key":"T"}}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := APNsPayload(tc.p, tc.badge, APNsLimit(tc.p.PushType))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			if !json.Valid(got) {
				t.Errorf("invalid JSON: %s", got)
			}
		})
	}
}

// The exact aps object of a background push: Apple wants content-available
// and nothing that would show or sound.
func TestAPNsBackgroundAps(t *testing.T) {
	tmpl, err := NewAPNsTemplate(Platform{PushType: pushjob.PushTypeBackground, Body: "x", Data: map[string]any{"k": 1}}, APNsMaxPayload)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tmpl.Payload(intp(9))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]json.RawMessage
	if err := json.Unmarshal(got, &v); err != nil {
		t.Fatal(err)
	}
	if string(v["aps"]) != `{"content-available":1}` {
		t.Errorf("aps = %s", v["aps"])
	}
}

func TestAPNsLimit(t *testing.T) {
	for pt, want := range map[pushjob.PushType]int{
		"": 4096, pushjob.PushTypeAlert: 4096, pushjob.PushTypeBackground: 4096, pushjob.PushTypeVoIP: 5120,
	} {
		if got := APNsLimit(pt); got != want {
			t.Errorf("APNsLimit(%q) = %d, want %d", pt, got, want)
		}
	}
}

// A VoIP push may be up to 5120 bytes: a body that would be cut for an
// alert goes whole, and a longer one is cut to 5120.
func TestAPNsVoIPLimit(t *testing.T) {
	p := Platform{PushType: pushjob.PushTypeVoIP, Body: strings.Repeat("a", 4500)}
	got, err := APNsPayload(p, nil, APNsLimit(p.PushType))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got), `"body":"`+p.Body+`"`) || len(got) <= APNsMaxPayload {
		t.Errorf("4500-byte body in a VoIP push: %d bytes, cut", len(got))
	}
	p.Body = strings.Repeat("你", 3000)
	got, err = APNsPayload(p, nil, APNsLimit(p.PushType))
	if err != nil {
		t.Fatal(err)
	}
	checkPayload(t, p, nil, APNsMaxVoIPPayload, got)
	if len(got) < APNsMaxVoIPPayload-8 {
		t.Errorf("VoIP payload cut to %d bytes, want close to %d", len(got), APNsMaxVoIPPayload)
	}
}

// A localized alert's loc fields are never cut: the body beside them is
// trimmed to fit, and when the keys and args alone are over the limit
// the payload is refused with a *SizeError.
func TestAPNsLocalizedSize(t *testing.T) {
	for name, text := range longTexts {
		p := Platform{Title: "alice", Body: text, LocKey: "MSG_FROM", LocArgs: []string{"Alice", "你好"}, TitleLocKey: "T"}
		for _, badge := range []*int{nil, intp(12345)} {
			got, err := APNsPayload(p, badge, APNsMaxPayload)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			checkPayload(t, p, badge, APNsMaxPayload, got)
			var v struct {
				Aps struct {
					Alert struct {
						LocKey  string   `json:"loc-key"`
						LocArgs []string `json:"loc-args"`
						TLK     string   `json:"title-loc-key"`
					}
				}
			}
			if err := json.Unmarshal(got, &v); err != nil {
				t.Fatal(err)
			}
			if a := v.Aps.Alert; a.LocKey != "MSG_FROM" || !reflect.DeepEqual(a.LocArgs, []string{"Alice", "你好"}) || a.TLK != "T" {
				t.Errorf("%s: loc fields %+v", name, a)
			}
		}
	}

	big := Platform{LocKey: "K", LocArgs: []string{strings.Repeat("x", 3000), strings.Repeat("y", 1200)}, Body: "b"}
	_, err := APNsPayload(big, nil, APNsMaxPayload)
	var se *SizeError
	if !errors.As(err, &se) || se.Max != APNsMaxPayload {
		t.Fatalf("loc_args over the limit: err = %v, want a *SizeError", err)
	}
	// The same fits a VoIP push's larger limit.
	big.PushType = pushjob.PushTypeVoIP
	if _, err := APNsPayload(big, nil, APNsLimit(big.PushType)); err != nil {
		t.Errorf("voip: %v", err)
	}
}

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
