package mute_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/mute"
	"github.com/pushd/pushd/internal/storage"
	"github.com/pushd/pushd/internal/storage/storagetest"
)

// The same suite runs against each dialect: what passes on SQLite must pass
// on PostgreSQL.
func TestSQLite(t *testing.T)   { storagetest.Suite(t, storagetest.SQLite, conformance) }
func TestPostgres(t *testing.T) { storagetest.Suite(t, storagetest.Postgres, conformance) }

var conformance = []storagetest.Case{
	{Name: "SetListDelete", Test: testSetListDelete},
	{Name: "Expiry", Test: testExpiry},
	{Name: "ActiveManyClients", Test: testActiveMany},
	{Name: "InvalidWritesNothing", Test: testInvalidWritesNothing},
	{Name: "Prune", Test: testPrune},
}

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func ptr(t time.Time) *time.Time { return &t }

func mustSet(t *testing.T, s *mute.Store, m mute.Mute, now time.Time) {
	t.Helper()
	if err := s.Set(context.Background(), m, now); err != nil {
		t.Fatalf("Set(%+v): %v", m, err)
	}
}

func testSetListDelete(t *testing.T, db *storage.DB) {
	ctx := context.Background()
	s := mute.NewStore(db)
	until := t0.Add(time.Hour + 123*time.Millisecond)
	mustSet(t, s, mute.Mute{AppID: "default", ClientID: "alice", ConversationID: "b-forever"}, t0)
	mustSet(t, s, mute.Mute{AppID: "default", ClientID: "alice", ConversationID: "a-hour", Until: &until, AllowMentions: true}, t0)
	mustSet(t, s, mute.Mute{AppID: "other", ClientID: "alice", ConversationID: "c"}, t0)

	list, err := s.List(ctx, "default", "alice", t0)
	if err != nil {
		t.Fatal(err)
	}
	want := []mute.Mute{
		{AppID: "default", ClientID: "alice", ConversationID: "a-hour", Until: &until, AllowMentions: true, CreatedAt: t0},
		{AppID: "default", ClientID: "alice", ConversationID: "b-forever", CreatedAt: t0},
	}
	if !equal(list, want) {
		t.Errorf("List =\n%s\nwant\n%s", show(list), show(want))
	}

	// Changing the terms keeps the start.
	mustSet(t, s, mute.Mute{AppID: "default", ClientID: "alice", ConversationID: "b-forever", AllowMentions: true, Until: ptr(t0.Add(48 * time.Hour))}, t0.Add(time.Minute))
	list, _ = s.List(ctx, "default", "alice", t0.Add(time.Minute))
	if len(list) != 2 || !list[1].AllowMentions || list[1].Until == nil || !list[1].CreatedAt.Equal(t0) {
		t.Errorf("after changing terms: %s", show(list))
	}

	if err := s.Delete(ctx, "default", "alice", "a-hour"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "default", "alice", "a-hour"); !errors.Is(err, mute.ErrNotFound) {
		t.Errorf("second Delete = %v, want ErrNotFound", err)
	}
	if list, _ := s.List(ctx, "default", "alice", t0); len(list) != 1 || list[0].ConversationID != "b-forever" {
		t.Errorf("List after Delete = %s", show(list))
	}
	if list, _ := s.List(ctx, "default", "nobody", t0); len(list) != 0 {
		t.Errorf("List(nobody) = %s", show(list))
	}
}

func testExpiry(t *testing.T, db *storage.DB) {
	ctx := context.Background()
	s := mute.NewStore(db)
	mustSet(t, s, mute.Mute{AppID: "default", ClientID: "forever", ConversationID: "c"}, t0)
	mustSet(t, s, mute.Mute{AppID: "default", ClientID: "hour", ConversationID: "c", Until: ptr(t0.Add(time.Hour))}, t0)
	mustSet(t, s, mute.Mute{AppID: "default", ClientID: "minute", ConversationID: "c", Until: ptr(t0.Add(time.Minute))}, t0)
	clients := []string{"forever", "hour", "minute", "none"}

	for _, tc := range []struct {
		at   time.Time
		want []string
	}{
		{t0, []string{"forever", "hour", "minute"}},
		{t0.Add(time.Minute - time.Millisecond), []string{"forever", "hour", "minute"}},
		{t0.Add(time.Minute), []string{"forever", "hour"}}, // until is exclusive
		{t0.Add(2 * time.Hour), []string{"forever"}},
	} {
		got, err := s.Active(ctx, "default", "c", clients, tc.at)
		if err != nil {
			t.Fatal(err)
		}
		if keys := slices.Sorted(maps.Keys(got)); !slices.Equal(keys, tc.want) {
			t.Errorf("Active at %v = %v, want %v", tc.at.Sub(t0), keys, tc.want)
		}
		list, err := s.List(ctx, "default", "minute", tc.at)
		if err != nil {
			t.Fatal(err)
		}
		if wantMinute := slices.Contains(tc.want, "minute"); (len(list) == 1) != wantMinute {
			t.Errorf("List(minute) at %v = %s", tc.at.Sub(t0), show(list))
		}
	}

	// Muting again after the old mute ran out starts a new one.
	later := t0.Add(3 * time.Hour)
	mustSet(t, s, mute.Mute{AppID: "default", ClientID: "minute", ConversationID: "c"}, later)
	got, _ := s.Active(ctx, "default", "c", []string{"minute"}, later)
	if m, ok := got["minute"]; !ok || m.Until != nil || !m.CreatedAt.Equal(later) {
		t.Errorf("renewed mute = %+v, %v", m, ok)
	}
	// An expired mute can still be deleted.
	mustSet(t, s, mute.Mute{AppID: "default", ClientID: "x", ConversationID: "c", Until: ptr(t0.Add(time.Second))}, t0)
	if err := s.Delete(ctx, "default", "x", "c"); err != nil {
		t.Errorf("Delete(expired) = %v", err)
	}
}

func testActiveMany(t *testing.T, db *storage.DB) {
	ctx := context.Background()
	s := mute.NewStore(db)
	const n = 10_000
	clients := make([]string, n)
	for i := range clients {
		clients[i] = fmt.Sprintf("c%05d", i)
	}
	// Every 100th client muted this conversation; every 100th+1 another
	// one; every 100th+2 this one but only until a moment ago.
	want := map[string]bool{}
	for i := 0; i < n; i += 100 {
		mustSet(t, s, mute.Mute{AppID: "default", ClientID: clients[i], ConversationID: "conv", AllowMentions: i%200 == 0}, t0)
		mustSet(t, s, mute.Mute{AppID: "default", ClientID: clients[i+1], ConversationID: "elsewhere"}, t0)
		mustSet(t, s, mute.Mute{AppID: "default", ClientID: clients[i+2], ConversationID: "conv", Until: ptr(t0.Add(time.Second))}, t0)
		mustSet(t, s, mute.Mute{AppID: "other", ClientID: clients[i+3], ConversationID: "conv"}, t0)
		want[clients[i]] = true
	}
	got, err := s.Active(ctx, "default", "conv", clients, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("Active for %d clients: %d mutes, want %d", n, len(got), len(want))
	}
	for c, m := range got {
		if !want[c] || m.ClientID != c || m.ConversationID != "conv" || m.AppID != "default" {
			t.Fatalf("unexpected mute %+v", m)
		}
	}

	// The whole decision for a job of n recipients.
	keep, dropped := mute.Decide(clients, got, []string{"c00000", "c00100"}, false, false)
	if len(dropped) != len(want)-1 || len(keep) != n-len(dropped) || dropped["c00000"] != "" || dropped["c00100"] != mute.ReasonMuted {
		t.Errorf("Decide: %d kept, %d dropped; c00000 %q, c00100 %q", len(keep), len(dropped), dropped["c00000"], dropped["c00100"])
	}
	if got, err := s.Active(ctx, "default", "conv", nil, t0); err != nil || len(got) != 0 {
		t.Errorf("Active(no clients) = %v, %v", got, err)
	}
}

func testInvalidWritesNothing(t *testing.T, db *storage.DB) {
	ctx := context.Background()
	s := mute.NewStore(db)
	err := s.Set(ctx, mute.Mute{AppID: "default", ClientID: "", ConversationID: "c", Until: ptr(t0.Add(-time.Hour))}, t0)
	var fe *mute.FieldErrors
	if !errors.As(err, &fe) || len(fe.Fields) != 2 {
		t.Fatalf("Set(invalid) = %v, want 2 field errors", err)
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM mutes").Scan(&n); err != nil || n != 0 {
		t.Errorf("rows after invalid Set: %d, %v", n, err)
	}
}

// Prune deletes the mutes that ended, of every app, and no other; what
// List and Active answer does not change.
func testPrune(t *testing.T, db *storage.DB) {
	ctx := context.Background()
	s := mute.NewStore(db)
	mustSet(t, s, mute.Mute{AppID: "default", ClientID: "forever", ConversationID: "c"}, t0)
	mustSet(t, s, mute.Mute{AppID: "default", ClientID: "minute", ConversationID: "c", Until: ptr(t0.Add(time.Minute))}, t0)
	mustSet(t, s, mute.Mute{AppID: "other", ClientID: "minute", ConversationID: "c", Until: ptr(t0.Add(time.Minute + time.Millisecond))}, t0)
	mustSet(t, s, mute.Mute{AppID: "default", ClientID: "hour", ConversationID: "c", Until: ptr(t0.Add(time.Hour))}, t0)
	clients := []string{"forever", "minute", "hour"}
	stored := func() []string {
		t.Helper()
		rows, err := db.QueryContext(ctx, "SELECT app_id, client_id FROM mutes ORDER BY app_id, client_id")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var app, client string
			if err := rows.Scan(&app, &client); err != nil {
				t.Fatal(err)
			}
			out = append(out, app+"/"+client)
		}
		return out
	}

	for _, tc := range []struct {
		at     time.Time
		pruned int64
		left   []string
	}{
		// Nothing has ended yet.
		{t0.Add(time.Minute - time.Millisecond), 0, []string{"default/forever", "default/hour", "default/minute", "other/minute"}},
		// until is exclusive: a mute until t has ended at t.
		{t0.Add(time.Minute), 1, []string{"default/forever", "default/hour", "other/minute"}},
		{t0.Add(2 * time.Minute), 1, []string{"default/forever", "default/hour"}},
		{t0.Add(2 * time.Minute), 0, []string{"default/forever", "default/hour"}},
		{t0.Add(48 * time.Hour), 1, []string{"default/forever"}},
	} {
		before, err := s.Active(ctx, "default", "c", clients, tc.at)
		if err != nil {
			t.Fatal(err)
		}
		n, err := s.Prune(ctx, tc.at)
		if err != nil || n != tc.pruned {
			t.Errorf("Prune at %v = %d, %v; want %d", tc.at.Sub(t0), n, err, tc.pruned)
		}
		if got := stored(); !slices.Equal(got, tc.left) {
			t.Errorf("after Prune at %v: %v stored, want %v", tc.at.Sub(t0), got, tc.left)
		}
		after, err := s.Active(ctx, "default", "c", clients, tc.at)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.EqualFunc(before, after, func(a, b mute.Mute) bool { return equal([]mute.Mute{a}, []mute.Mute{b}) }) {
			t.Errorf("Active at %v changed with Prune: %v, then %v", tc.at.Sub(t0), before, after)
		}
	}
	if _, err := s.Prune(ctx, time.Time{}); err == nil {
		t.Error("Prune at the zero time succeeded")
	}
}

func equal(a, b []mute.Mute) bool {
	return slices.EqualFunc(a, b, func(x, y mute.Mute) bool {
		if (x.Until == nil) != (y.Until == nil) || x.Until != nil && !x.Until.Equal(*y.Until) {
			return false
		}
		x.Until, y.Until = nil, nil
		return x == y
	})
}

func show(list []mute.Mute) string {
	s := ""
	for _, m := range list {
		until := "forever"
		if m.Until != nil {
			until = m.Until.String()
		}
		s += fmt.Sprintf("  %s/%s/%s until %s mentions %v created %v\n", m.AppID, m.ClientID, m.ConversationID, until, m.AllowMentions, m.CreatedAt)
	}
	return s
}
