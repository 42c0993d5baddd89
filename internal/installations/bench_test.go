package installations_test

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/pushd/pushd/internal/installations"
	"github.com/pushd/pushd/internal/storage/storagetest"
)

// BenchmarkValidForClients is the dispatcher's lookup for one job: the
// valid devices of 1 000 or 10 000 recipients, among 100 000 other clients'
// devices.
func BenchmarkValidForClients(b *testing.B) {
	for _, d := range benchDialects {
		b.Run(d.name, func(b *testing.B) {
			ctx := context.Background()
			db := d.open(b)
			rows, _ := population(10_000)
			for i := range 100_000 {
				rows = append(rows, installations.Installation{ID: fmt.Sprintf("bg-%06d", i), AppID: "default",
					ClientID: fmt.Sprintf("bg%06d", i), Provider: installations.FCM, Token: fmt.Sprintf("fcm-bg%06d", i), Valid: true})
			}
			seed(b, db, rows)
			if _, err := db.ExecContext(ctx, "ANALYZE"); err != nil {
				b.Fatal(err)
			}
			s := installations.NewStore(db)
			for _, n := range []int{1_000, 10_000} {
				clients := clientIDs(n)
				b.Run(strconv.Itoa(n), func(b *testing.B) {
					var got []installations.Installation
					for b.Loop() {
						var err error
						got, err = s.ValidForClients(ctx, "default", clients)
						if err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(len(got)), "devices/op")
				})
			}
		})
	}
}

// benchDialects are the databases every benchmark here runs on.
var benchDialects = []struct {
	name string
	open storagetest.Opener
}{{"sqlite", storagetest.SQLite}, {"postgres", storagetest.Postgres}}

// BenchmarkRecord is the record step of a 1 000-device attempt: one batch
// of delivery rows in one statement.
func BenchmarkRecord(b *testing.B) {
	for _, d := range benchDialects {
		b.Run(d.name, func(b *testing.B) {
			ctx := context.Background()
			del := installations.NewDeliveries(d.open(b))
			rows := make([]installations.Delivery, 1000)
			for i := range rows {
				rows[i] = installations.Delivery{InstallationID: fmt.Sprintf("dev-%04d", i), ClientID: fmt.Sprintf("user-%04d", i), Outcome: "delivered", ProviderID: "apns-id"}
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if err := del.Record(ctx, "default", fmt.Sprintf("m%d", i), rows); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(rows))/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkRecordDM is the record step of direct messages: two devices a
// message, from 20 jobs at once, as 20 workers record them.
func BenchmarkRecordDM(b *testing.B) {
	for _, d := range benchDialects {
		b.Run(d.name, func(b *testing.B) {
			ctx := context.Background()
			del := installations.NewDeliveries(d.open(b))
			var n atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(20 / max(1, runtime.GOMAXPROCS(0)))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					rows := []installations.Delivery{
						{InstallationID: fmt.Sprintf("dev-%d-a", i), ClientID: fmt.Sprintf("user-%d", i), Outcome: "delivered", ProviderID: "apns-id"},
						{InstallationID: fmt.Sprintf("dev-%d-b", i), ClientID: fmt.Sprintf("user-%d", i), Outcome: "delivered", ProviderID: "apns-id"},
					}
					if err := del.Record(ctx, "default", fmt.Sprintf("m%d", i), rows); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
		})
	}
}
