package mute

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	active := map[string]Mute{
		"muted":        {ClientID: "muted"},
		"lets-mention": {ClientID: "lets-mention", AllowMentions: true},
	}
	recipients := []string{"free", "muted", "lets-mention", "also-free"}
	for _, tc := range []struct {
		name       string
		mentions   []string
		mentionAll bool
		force      bool
		keep       []string
		dropped    []string
	}{
		{name: "mutes drop", keep: []string{"free", "also-free"}, dropped: []string{"lets-mention", "muted"}},
		{name: "mention passes an allowing mute", mentions: []string{"lets-mention", "muted"},
			keep: []string{"free", "lets-mention", "also-free"}, dropped: []string{"muted"}},
		{name: "mention of another client", mentions: []string{"free"},
			keep: []string{"free", "also-free"}, dropped: []string{"lets-mention", "muted"}},
		{name: "mention_all passes an allowing mute", mentionAll: true,
			keep: []string{"free", "lets-mention", "also-free"}, dropped: []string{"muted"}},
		{name: "force overrides every mute", force: true, keep: recipients},
		{name: "force with mentions", force: true, mentionAll: true, keep: recipients},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keep, dropped := Decide(recipients, active, tc.mentions, tc.mentionAll, tc.force)
			if !slices.Equal(keep, tc.keep) {
				t.Errorf("keep = %v, want %v", keep, tc.keep)
			}
			if got := slices.Sorted(maps.Keys(dropped)); !slices.Equal(got, tc.dropped) {
				t.Errorf("dropped = %v, want %v", got, tc.dropped)
			}
			for c, r := range dropped {
				if r != ReasonMuted {
					t.Errorf("dropped[%s] = %q", c, r)
				}
			}
		})
	}

	keep, dropped := Decide(recipients, nil, nil, false, false)
	if !slices.Equal(keep, recipients) || len(dropped) != 0 || dropped == nil {
		t.Errorf("no mutes: keep %v, dropped %v", keep, dropped)
	}
	keep[0] = "changed"
	if recipients[0] != "free" {
		t.Error("Decide's keep aliases the recipients")
	}
}

func TestValidate(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	past, future := now.Add(-time.Second), now.Add(time.Hour)
	ok := Mute{AppID: "default", ClientID: "alice", ConversationID: "conv"}
	for _, tc := range []struct {
		name   string
		m      Mute
		fields []string
	}{
		{"forever", ok, nil},
		{"until future", Mute{AppID: "a", ClientID: "c", ConversationID: "v", Until: &future}, nil},
		{"until past", Mute{AppID: "a", ClientID: "c", ConversationID: "v", Until: &past}, []string{"until"}},
		{"until now", Mute{AppID: "a", ClientID: "c", ConversationID: "v", Until: &now}, []string{"until"}},
		{"all missing", Mute{Until: &past}, []string{"app_id", "client_id", "conversation_id", "until"}},
		{"too long", Mute{AppID: "a", ClientID: strings.Repeat("c", 257), ConversationID: strings.Repeat("v", 257)},
			[]string{"client_id", "conversation_id"}},
		{"bad bytes", Mute{AppID: "a\x00", ClientID: "c\xff", ConversationID: "v"}, []string{"app_id", "client_id"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.m.Validate(now)
			var got []string
			if fe, ok := err.(*FieldErrors); ok {
				for _, f := range fe.Fields {
					got = append(got, f.Field)
				}
			} else if err != nil {
				t.Fatalf("Validate = %T %v, want *FieldErrors", err, err)
			}
			if !slices.Equal(got, tc.fields) {
				t.Errorf("fields = %v, want %v (%v)", got, tc.fields, err)
			}
		})
	}
}
