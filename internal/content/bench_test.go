package content

import (
	"strings"
	"testing"
)

// The per-device cost of a payload: building it whole for every device, or
// building a template once per job and splicing in each device's badge.
func BenchmarkAPNsPerDevice(b *testing.B) {
	for _, bc := range []struct{ name, body string }{
		{"short", "Are we still on for dinner tonight? 🍝"},
		{"truncated", strings.Repeat("你好世界，这是一条很长的消息。", 200)},
	} {
		p := Platform{Title: "alice", Body: bc.body, Sound: "default", ThreadID: "conv-1", Category: "MESSAGE",
			Data: map[string]any{"conversation": "conv-1", "message": "m-123", "n": 3}}
		b.Run(bc.name+"/payload", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				badge := i % 100
				if _, err := APNsPayload(p, &badge, APNsMaxPayload); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"/template", func(b *testing.B) {
			b.ReportAllocs()
			tmpl, err := NewAPNsTemplate(p, APNsMaxPayload)
			if err != nil {
				b.Fatal(err)
			}
			for i := 0; b.Loop(); i++ {
				badge := i % 100
				if _, err := tmpl.Payload(&badge); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkFCMPerDevice(b *testing.B) {
	p := Platform{Title: "alice", Body: "Are we still on for dinner tonight?", Sound: "default", ChannelID: "chat",
		Data: map[string]any{"conversation": "conv-1", "message": "m-123", "n": 3, "meta": map[string]any{"k": "v"}}}
	j := testJob()
	j.TTLSeconds = 3600
	b.Run("message", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			badge := i % 100
			FCMMessage(p, j, "token", &badge)
		}
	})
	ios, err := NewFCMAPNsTemplate(p, j, sent)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		tmpl *FCMTemplate
	}{
		{"template/android", NewFCMTemplate(p, j, sent)},
		{"template/ios", ios},
		{"template/web", NewFCMWebTemplate(p, j, sent)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				badge := i % 100
				tc.tmpl.Message("token", &badge)
			}
		})
	}
}

func BenchmarkResolve(b *testing.B) {
	d := Defaults{Title: "${fromClientId}", Body: "New message in ${convId}", Sound: "default",
		Data: map[string]any{"conv": "${convId}", "at": "${timestamp}"}}
	j := testJob()
	b.ReportAllocs()
	for b.Loop() {
		Resolve(d, j)
	}
}
