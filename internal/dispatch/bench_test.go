package dispatch_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/pushd/pushd/internal/apns"
	"github.com/pushd/pushd/internal/config"
	"github.com/pushd/pushd/internal/dispatch"
	"github.com/pushd/pushd/internal/fcm"
	"github.com/pushd/pushd/internal/installations"
	"github.com/pushd/pushd/internal/mute"
	"github.com/pushd/pushd/internal/pushsim"
	"github.com/pushd/pushd/internal/pushsim/pushsimtest"
	"github.com/pushd/pushd/internal/storage/storagetest"
	"github.com/pushd/pushd/pushjob"
)

// realSenders are the real apns and fcm senders for app "default",
// talking to sim: APNs with a .p8 key for topic com.example.chat, FCM with
// a service account of project.
func realSenders(tb testing.TB, sim *pushsim.Sim, project string) (*apns.Sender, *fcm.Sender) {
	tb.Helper()
	dir := tb.TempDir()
	key, err := sim.NewAPNsKey("", "")
	if err != nil {
		tb.Fatal(err)
	}
	p8, _ := key.P8()
	sa, _ := sim.NewServiceAccount(project)
	saJSON, _ := sa.JSON(sim.TokenURL())
	for name, data := range map[string][]byte{"key.p8": p8, "sa.json": saJSON, "ca.pem": sim.CA().CertPEM()} {
		pushsimtest.WriteFile(tb, dir, name, data)
	}
	a, err := apns.New(apns.Config{Apps: []apns.AppConfig{{
		AppID: "default", KeyFile: filepath.Join(dir, "key.p8"), KeyID: key.KeyID, TeamID: key.TeamID, Topic: "com.example.chat",
		ProductionURL: sim.APNsURL(pushsim.Production), DevelopmentURL: sim.APNsURL(pushsim.Development), CAFile: filepath.Join(dir, "ca.pem"),
	}}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(a.Close)
	f, err := fcm.New(context.Background(), fcm.Config{Apps: []fcm.AppConfig{{
		AppID: "default", CredentialsFile: filepath.Join(dir, "sa.json"), Endpoint: sim.FCMEndpoint(), CAFile: filepath.Join(dir, "ca.pem"),
	}}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(f.Close)
	return a, f
}

// senders are the pipeline's Senders over the real clients, as pushd
// wires them.
func senders(a *apns.Sender, f *fcm.Sender, reg apns.EnvCorrector, parallel int) map[string]dispatch.Sender {
	return map[string]dispatch.Sender{
		"apns": apns.NewBatchSender(a, apns.BatchConfig{Registry: reg, Fanout: dispatch.NewFanout(parallel, 0)}),
		"fcm":  fcm.NewBatchSender(f, dispatch.NewFanout(parallel, 0)),
	}
}

// benchWorld is a pipeline over fresh SQLite stores and the real
// senders talking to pushsim, for the app "default" with the content of an
// app that configures none.
type benchWorld struct {
	sim   *pushsim.Sim
	reg   *installations.Store
	mutes *mute.Store
	p     *dispatch.Pipeline
}

func newBenchWorld(b *testing.B) *benchWorld {
	b.Helper()
	sim := pushsimtest.Start(b, pushsim.Config{})
	a, f := realSenders(b, sim, "bench")
	db := storagetest.SQLite(b)
	w := &benchWorld{sim: sim, reg: installations.NewStore(db), mutes: mute.NewStore(db)}
	p, err := dispatch.New(dispatch.Config{
		Apps:  map[string]dispatch.App{"default": {Defaults: config.DefaultContent()}},
		Mutes: w.mutes, Registry: w.reg, Deliveries: installations.NewDeliveries(db), Senders: senders(a, f, w.reg, 0),
	})
	if err != nil {
		b.Fatal(err)
	}
	w.p = p
	return w
}

// BenchmarkProcess runs whole jobs through the real pipeline: SQLite
// stores, the real apns and fcm senders, pushsim as Apple and Google. Each
// job has 1 000 recipients, half iPhones and half Android phones, and a
// tenth of them muted; recipients/s is the figure to read.
func BenchmarkProcess(b *testing.B) {
	ctx := context.Background()
	w := newBenchWorld(b)
	reg, mutes, p := w.reg, w.mutes, w.p
	const n = 1000
	m := w.sim.Minter()
	var recipients []string
	for i := range n {
		client := fmt.Sprintf("user-%04d", i)
		recipients = append(recipients, client)
		in := installations.Installation{ID: "dev-" + client, AppID: "default", ClientID: client}
		if i%2 == 0 {
			in.Provider, in.Token, in.APNsEnv = installations.APNs, m.APNs(pushsim.FateValid, pushsim.Production, "com.example.chat", uint64(i)), installations.Production
		} else {
			in.Provider, in.Token = installations.FCM, m.FCM(pushsim.FateValid, "bench", uint64(i))
		}
		if _, err := reg.Upsert(ctx, in); err != nil {
			b.Fatal(err)
		}
		if i%10 == 0 {
			if err := mutes.Set(ctx, mute.Mute{AppID: "default", ClientID: client, ConversationID: "conv"}, t0); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		job := pushjob.Job{MessageID: fmt.Sprintf("m%d", i), ConversationID: "conv", FromClientID: "zoe", Recipients: recipients}
		job.Normalize()
		rep, err := p.Process(ctx, job, false)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Pending() != 0 {
			b.Fatalf("%d devices pending", rep.Pending())
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "recipients/s")
}

// BenchmarkProcessDM runs direct-message jobs, one recipient with one
// iPhone each, from 20 goroutines as pushd's 20 workers would: the cost
// per job of the queries and writes around a single push. jobs/s is the
// figure to read.
func BenchmarkProcessDM(b *testing.B) {
	ctx := context.Background()
	w := newBenchWorld(b)
	reg, p := w.reg, w.p
	const clients = 1000
	m := w.sim.Minter()
	for i := range clients {
		client := fmt.Sprintf("user-%04d", i)
		in := installations.Installation{ID: "dev-" + client, AppID: "default", ClientID: client, Provider: installations.APNs,
			Token: m.APNs(pushsim.FateValid, pushsim.Production, "com.example.chat", uint64(i)), APNsEnv: installations.Production}
		if _, err := reg.Upsert(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
	var seq atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(10) // 20 goroutines on 2 cores, as 20 workers
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := seq.Add(1)
			job := pushjob.Job{MessageID: fmt.Sprintf("dm%d", i), ConversationID: "conv", FromClientID: "zoe",
				Recipients: []string{fmt.Sprintf("user-%04d", i%clients)}}
			job.Normalize()
			rep, err := p.Process(ctx, job, false)
			if err != nil {
				b.Fatal(err)
			}
			if rep.Pending() != 0 {
				b.Fatalf("%d devices pending", rep.Pending())
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
}
