package apns

import "testing"

// BenchmarkClassify is the answer table, for a push answered 200 and one
// refused with a reason.
func BenchmarkClassify(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if classify(200, "") != "delivered" || classify(410, "Unregistered") != "invalid_token" {
			b.Fatal("misclassified")
		}
	}
}
