package apns

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pushd/pushd/internal/content"
)

func FuzzAPNsPayload(f *testing.F) {
	f.Add("alice", "hello", "v", 3, true, uint16(4096))
	f.Add("", strings.Repeat("你好👍🏽", 400), "", 0, false, uint16(4096))
	f.Add("t", strings.Repeat("e\u0301\"\n", 300), "data", -7, true, uint16(100))
	f.Add("t", "\xff\xfe\x00 bad", "\xc3", 1, true, uint16(40))
	f.Add(strings.Repeat("x", 5000), "b", "", 0, false, uint16(5120))
	f.Fuzz(func(t *testing.T, title, body, data string, badgeN int, hasBadge bool, size uint16) {
		limit := int(size%8192) + 1
		p := content.Platform{Title: title, Body: body, Sound: "default", ThreadID: "c", Data: map[string]any{"k": data, "aps": data}}
		var badge *int
		if hasBadge {
			badge = &badgeN
		}
		got, err := payloadOnce(p, badge, limit)
		if err != nil {
			if _, ok := err.(*SizeError); !ok {
				t.Fatalf("error %v is not a *SizeError", err)
			}
			return
		}
		if len(got) > limit {
			t.Fatalf("payload is %d bytes, over %d", len(got), limit)
		}
		if !utf8.Valid(got) {
			t.Fatalf("payload is not valid UTF-8: %q", got)
		}
		var v struct {
			Aps struct {
				Alert struct{ Title, Body string }
				Badge *int
			}
			K string
		}
		if err := json.Unmarshal(got, &v); err != nil {
			t.Fatalf("payload is not valid JSON (%v): %q", err, got)
		}
		if hasBadge && (v.Aps.Badge == nil || *v.Aps.Badge != badgeN) {
			t.Fatalf("badge lost: %q", got)
		}
		if utf8.ValidString(body) && v.Aps.Alert.Body != body {
			prefix, ok := strings.CutSuffix(v.Aps.Alert.Body, ellipsis)
			if !ok || !strings.HasPrefix(body, prefix) {
				t.Fatalf("body %q is not a prefix of %q plus an ellipsis", v.Aps.Alert.Body, body)
			}
		}
	})
}
