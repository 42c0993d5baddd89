package mute_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/mute"
	"github.com/pushd/pushd/internal/storage/storagetest"
)

// BenchmarkActive is the dispatcher's mute lookup for one job of 1 000
// recipients, a tenth of whom muted the conversation, among the mutes of
// 10 000 other conversations.
func BenchmarkActive(b *testing.B) {
	ctx := context.Background()
	now := time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	s := mute.NewStore(storagetest.SQLite(b))
	clients := make([]string, 1000)
	for i := range clients {
		clients[i] = fmt.Sprintf("user-%04d", i)
		if i%10 == 0 {
			if err := s.Set(ctx, mute.Mute{AppID: "default", ClientID: clients[i], ConversationID: "conv"}, now); err != nil {
				b.Fatal(err)
			}
		}
	}
	for i := range 10_000 {
		if err := s.Set(ctx, mute.Mute{AppID: "default", ClientID: clients[i%1000], ConversationID: fmt.Sprintf("other-%d", i)}, now); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		got, err := s.Active(ctx, "default", "conv", clients, now)
		if err != nil || len(got) != 100 {
			b.Fatalf("Active = %d mutes, %v; want 100", len(got), err)
		}
	}
}

// BenchmarkDecide is the mute rule over one job of 1 000 recipients with
// 100 mutes, some letting mentions through.
func BenchmarkDecide(b *testing.B) {
	clients := make([]string, 1000)
	active := make(map[string]mute.Mute)
	for i := range clients {
		clients[i] = fmt.Sprintf("user-%04d", i)
		if i%10 == 0 {
			active[clients[i]] = mute.Mute{ClientID: clients[i], AllowMentions: i%20 == 0}
		}
	}
	mentions := clients[:50]
	b.ReportAllocs()
	for b.Loop() {
		keep, dropped := mute.Decide(clients, active, mentions, false, false)
		if len(keep)+len(dropped) != len(clients) {
			b.Fatal("recipients lost")
		}
	}
}
