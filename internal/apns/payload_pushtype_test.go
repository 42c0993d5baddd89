package apns

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/pushd/pushd/internal/content"
	"github.com/pushd/pushd/pushjob"
)

func TestAPNsPayloadPushTypes(t *testing.T) {
	checkPayloads(t, []payloadCase{
		{"background is content-available alone",
			content.Platform{
				PushType: pushjob.PushTypeBackground, Title: "t", Body: "b", Sound: "default", Category: "MSG",
				ThreadID: "conv-1", MutableContent: true, LocKey: "K", Data: map[string]any{"sync": "inbox"},
			},
			intp(4), `{"aps":{"content-available":1},"sync":"inbox"}`},
		{"background without data", content.Platform{PushType: pushjob.PushTypeBackground}, nil, `{"aps":{"content-available":1}}`},
		{"voip keeps the alert shape", content.Platform{PushType: pushjob.PushTypeVoIP, Body: "Alice is calling", Data: map[string]any{"call": "c1"}},
			nil, `{"aps":{"alert":{"body":"Alice is calling"}},"call":"c1"}`},
		{"alert type is the default shape", content.Platform{PushType: pushjob.PushTypeAlert, Body: "b", MutableContent: true},
			intp(1), `{"aps":{"alert":{"body":"b"},"mutable-content":1,"badge":1}}`},
		{"localized body",
			content.Platform{LocKey: "MSG_FROM", LocArgs: []string{"Alice", `say "hi"`}},
			nil, `{"aps":{"alert":{"loc-key":"MSG_FROM","loc-args":["Alice","say \"hi\""]}}}`},
		{"localized title and body with fallback text",
			content.Platform{
				Title: "Alice", TitleLocKey: "CONV_TITLE", TitleLocArgs: []string{"Team"},
				Body: "hello", LocKey: "MSG", LocArgs: []string{"Alice"}, ThreadID: "conv-1", Category: "MSG",
			},
			intp(2), `{"aps":{"alert":{"title":"Alice","title-loc-key":"CONV_TITLE","title-loc-args":["Team"],"body":"hello","loc-key":"MSG","loc-args":["Alice"]},"category":"MSG","thread-id":"conv-1","badge":2}}`},
		{"title loc key alone", content.Platform{TitleLocKey: "T"}, nil, `{"aps":{"alert":{"title-loc-key":"T"}}}`},
	})
}

// The exact aps object of a background push: Apple wants content-available
// and nothing that would show or sound.
func TestAPNsBackgroundAps(t *testing.T) {
	tmpl, err := NewPayloadTemplate(content.Platform{PushType: pushjob.PushTypeBackground, Body: "x", Data: map[string]any{"k": 1}}, MaxPayload)
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
		if got := PayloadLimit(pt); got != want {
			t.Errorf("PayloadLimit(%q) = %d, want %d", pt, got, want)
		}
	}
}

// A VoIP push may be up to 5120 bytes: a body that would be cut for an
// alert goes whole, and a longer one is cut to 5120.
func TestAPNsVoIPLimit(t *testing.T) {
	p := content.Platform{PushType: pushjob.PushTypeVoIP, Body: strings.Repeat("a", 4500)}
	got, err := payloadOnce(p, nil, PayloadLimit(p.PushType))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got), `"body":"`+p.Body+`"`) || len(got) <= MaxPayload {
		t.Errorf("4500-byte body in a VoIP push: %d bytes, cut", len(got))
	}
	p.Body = strings.Repeat("你", 3000)
	got, err = payloadOnce(p, nil, PayloadLimit(p.PushType))
	if err != nil {
		t.Fatal(err)
	}
	checkPayload(t, p, nil, MaxVoIPPayload, got)
	if len(got) < MaxVoIPPayload-8 {
		t.Errorf("VoIP payload cut to %d bytes, want close to %d", len(got), MaxVoIPPayload)
	}
}

// A localized alert's loc fields are never cut: the body beside them is
// trimmed to fit, and when the keys and args alone are over the limit
// the payload is refused with a *SizeError.
func TestAPNsLocalizedSize(t *testing.T) {
	for name, text := range longTexts {
		p := content.Platform{Title: "alice", Body: text, LocKey: "MSG_FROM", LocArgs: []string{"Alice", "你好"}, TitleLocKey: "T"}
		for _, badge := range []*int{nil, intp(12345)} {
			got, err := payloadOnce(p, badge, MaxPayload)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			checkPayload(t, p, badge, MaxPayload, got)
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

	big := content.Platform{LocKey: "K", LocArgs: []string{strings.Repeat("x", 3000), strings.Repeat("y", 1200)}, Body: "b"}
	_, err := payloadOnce(big, nil, MaxPayload)
	var se *SizeError
	if !errors.As(err, &se) || se.Max != MaxPayload {
		t.Fatalf("loc_args over the limit: err = %v, want a *SizeError", err)
	}
	// The same fits a VoIP push's larger limit.
	big.PushType = pushjob.PushTypeVoIP
	if _, err := payloadOnce(big, nil, PayloadLimit(big.PushType)); err != nil {
		t.Errorf("voip: %v", err)
	}
}
