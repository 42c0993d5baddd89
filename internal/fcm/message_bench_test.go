package fcm

import (
	"testing"

	"github.com/pushd/pushd/internal/content"
)

// The per-device cost of a payload: building it whole for every device, or

func BenchmarkFCMPerDevice(b *testing.B) {
	p := content.Platform{Title: "alice", Body: "Are we still on for dinner tonight?", Sound: "default", ChannelID: "chat",
		Data: map[string]any{"conversation": "conv-1", "message": "m-123", "n": 3, "meta": map[string]any{"k": "v"}}}
	j := testJob()
	j.TTLSeconds = 3600
	b.Run("message", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			badge := i % 100
			messageOnce(p, j, "token", &badge)
		}
	})
	ios, err := NewAPNsTemplate(p, j, sent)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		tmpl *Template
	}{
		{"template/android", NewAndroidTemplate(p, j, sent)},
		{"template/ios", ios},
		{"template/web", NewWebTemplate(p, j, sent)},
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
