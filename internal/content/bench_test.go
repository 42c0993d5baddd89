package content

import (
	"testing"
)

// The per-device cost of a payload: building it whole for every device, or
func BenchmarkResolve(b *testing.B) {
	d := Defaults{Title: "${fromClientId}", Body: "New message in ${convId}", Sound: "default",
		Data: map[string]any{"conv": "${convId}", "at": "${timestamp}"}}
	j := testJob()
	b.ReportAllocs()
	for b.Loop() {
		Resolve(d, j)
	}
}
