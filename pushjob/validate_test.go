package pushjob_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pushd/pushd/pushjob"
)

// validJob returns the smallest valid job.
func validJob() pushjob.Job {
	return pushjob.Job{MessageID: "m1", ConversationID: "c1", Recipients: []string{"alice", "bob"}}
}

// fullJob returns a valid job that uses every field.
func fullJob() pushjob.Job {
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	return pushjob.Job{
		AppID:          "chat-app_1.0",
		MessageID:      "msg:7f3a/b c",
		ConversationID: "conv-42",
		FromClientID:   "alice",
		Recipients:     []string{"bob", "carol"},
		MentionAll:     true,
		Mentions:       []string{"carol"},
		Push: &pushjob.Content{
			Alert: "hi", Title: "Alice", Body: "hello",
			Badge: &pushjob.Badge{Increment: true},
			Sound: "default", Category: "MESSAGE", ThreadID: "conv-42",
			Data: map[string]any{"conv": "conv-42", "n": 1.0},
			IOS: &pushjob.PlatformContent{
				Badge: &pushjob.Badge{Value: 0}, MutableContent: true,
				Data: map[string]any{"from": "ok on APNs"},
			},
			Android: &pushjob.PlatformContent{
				Title: "Alice", ChannelID: "messages",
				Data: map[string]any{"aps": "ok on FCM"},
			},
		},
		Force:     true,
		ExpiresAt: &exp,
		Priority:  pushjob.PriorityHigh,
		Timestamp: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
	}
}

// fields returns the field names of err, which must be a *ValidationError
// or nil.
func fields(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var ve *pushjob.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *ValidationError", err, err)
	}
	var names []string
	for _, f := range ve.Fields {
		if f.Rule == "" {
			t.Errorf("field %q has an empty rule", f.Field)
		}
		names = append(names, f.Field)
	}
	return names
}

func TestValidate(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name   string
		mutate func(*pushjob.Job)
		want   []string // field names, in order
		rule   string   // part of the first rule, when set
	}{
		{name: "minimal", mutate: func(*pushjob.Job) {}},
		{name: "every field", mutate: func(j *pushjob.Job) { *j = fullJob() }},

		{name: "message_id missing", mutate: func(j *pushjob.Job) { j.MessageID = "" }, want: []string{"message_id"}, rule: "required"},
		{name: "message_id 128 bytes", mutate: func(j *pushjob.Job) { j.MessageID = long(128) }},
		{name: "message_id 129 bytes", mutate: func(j *pushjob.Job) { j.MessageID = long(129) }, want: []string{"message_id"}, rule: "at most 128 bytes"},
		{name: "message_id control character", mutate: func(j *pushjob.Job) { j.MessageID = "a\nb" }, want: []string{"message_id"}, rule: "printable"},
		{name: "message_id invalid UTF-8", mutate: func(j *pushjob.Job) { j.MessageID = "a\xffb" }, want: []string{"message_id"}, rule: "printable"},
		{name: "message_id unicode", mutate: func(j *pushjob.Job) { j.MessageID = "消息 1" }},

		{name: "conversation_id missing", mutate: func(j *pushjob.Job) { j.ConversationID = "" }, want: []string{"conversation_id"}, rule: "required"},
		{name: "conversation_id 257 bytes", mutate: func(j *pushjob.Job) { j.ConversationID = long(257) }, want: []string{"conversation_id"}, rule: "at most 256 bytes"},
		{name: "conversation_id NUL", mutate: func(j *pushjob.Job) { j.ConversationID = "c\x00" }, want: []string{"conversation_id"}, rule: "printable"},
		{name: "conversation_id invalid UTF-8", mutate: func(j *pushjob.Job) { j.ConversationID = "c\xc3" }, want: []string{"conversation_id"}, rule: "printable"},
		{name: "conversation_id unicode", mutate: func(j *pushjob.Job) { j.ConversationID = "群聊 #1" }},

		{name: "app_id with space", mutate: func(j *pushjob.Job) { j.AppID = "my app" }, want: []string{"app_id"}, rule: "[A-Za-z0-9_.-]{1,64}"},
		{name: "app_id with colon", mutate: func(j *pushjob.Job) { j.AppID = "a:b" }, want: []string{"app_id"}},
		{name: "app_id 64 bytes", mutate: func(j *pushjob.Job) { j.AppID = long(64) }},
		{name: "app_id 65 bytes", mutate: func(j *pushjob.Job) { j.AppID = long(65) }, want: []string{"app_id"}},
		{name: "app_id NUL", mutate: func(j *pushjob.Job) { j.AppID = "chat\x00" }, want: []string{"app_id"}, rule: "printable"},
		{name: "from_client_id 257 bytes", mutate: func(j *pushjob.Job) { j.FromClientID = long(257) }, want: []string{"from_client_id"}},
		{name: "from_client_id NUL", mutate: func(j *pushjob.Job) { j.FromClientID = "ali\x00ce" }, want: []string{"from_client_id"}, rule: "printable"},
		{name: "from_client_id escape", mutate: func(j *pushjob.Job) { j.FromClientID = "\x1b[31malice" }, want: []string{"from_client_id"}, rule: "no control characters"},

		{name: "recipients nil", mutate: func(j *pushjob.Job) { j.Recipients = nil }, want: []string{"recipients"}, rule: "required"},
		{name: "recipients empty", mutate: func(j *pushjob.Job) { j.Recipients = []string{} }, want: []string{"recipients"}, rule: "required"},
		{name: "recipient empty", mutate: func(j *pushjob.Job) { j.Recipients = []string{"a", "b", ""} }, want: []string{"recipients[2]"}, rule: "must not be empty"},
		{name: "recipient 257 bytes", mutate: func(j *pushjob.Job) { j.Recipients = []string{"a", long(257)} }, want: []string{"recipients[1]"}, rule: "at most 256 bytes"},
		{name: "recipient duplicate", mutate: func(j *pushjob.Job) { j.Recipients = []string{"a", "b", "c", "b"} }, want: []string{"recipients[3]"}, rule: "duplicate of recipients[1]"},
		{name: "recipients duplicates", mutate: func(j *pushjob.Job) { j.Recipients = []string{"a", "a", "a"} }, want: []string{"recipients[1]", "recipients[2]"}, rule: "duplicate of recipients[0]"},
		{name: "recipient NUL", mutate: func(j *pushjob.Job) { j.Recipients = []string{"a", "b\x00"} }, want: []string{"recipients[1]"}, rule: "printable"},
		{name: "recipient tab", mutate: func(j *pushjob.Job) { j.Recipients = []string{"a\tb"} }, want: []string{"recipients[0]"}, rule: "printable"},
		{name: "recipient invalid UTF-8", mutate: func(j *pushjob.Job) { j.Recipients = []string{"\xff"} }, want: []string{"recipients[0]"}, rule: "printable"},
		{name: "mention empty", mutate: func(j *pushjob.Job) { j.Mentions = []string{"a", ""} }, want: []string{"mentions[1]"}, rule: "must not be empty"},
		{name: "mention NUL", mutate: func(j *pushjob.Job) { j.Mentions = []string{"a", "\x00"} }, want: []string{"mentions[1]"}, rule: "printable"},
		{name: "mention repeated", mutate: func(j *pushjob.Job) { j.Mentions = []string{"a", "a"} }},

		{name: "priority high", mutate: func(j *pushjob.Job) { j.Priority = pushjob.PriorityHigh }},
		{name: "priority normal", mutate: func(j *pushjob.Job) { j.Priority = pushjob.PriorityNormal }},
		{name: "priority low", mutate: func(j *pushjob.Job) { j.Priority = pushjob.PriorityLow }},
		{name: "priority unknown", mutate: func(j *pushjob.Job) { j.Priority = "urgent" }, want: []string{"priority"}, rule: `one of "high", "normal", "low"`},
		{name: "priority wrong case", mutate: func(j *pushjob.Job) { j.Priority = "High" }, want: []string{"priority"}},

		{name: "ttl negative", mutate: func(j *pushjob.Job) { j.TTLSeconds = -1 }, want: []string{"ttl_seconds"}, rule: "negative"},
		{name: "ttl 28 days", mutate: func(j *pushjob.Job) { j.TTLSeconds = 28 * 86400 }},
		{name: "ttl over 28 days", mutate: func(j *pushjob.Job) { j.TTLSeconds = 28*86400 + 1 }, want: []string{"ttl_seconds"}, rule: "at most 2419200"},
		{name: "ttl and expires_at", mutate: func(j *pushjob.Job) {
			exp := time.Now().Add(time.Hour)
			j.TTLSeconds, j.ExpiresAt = 60, &exp
		}, want: []string{"expires_at"}, rule: "not both"},
		{name: "expires_at in the past", mutate: func(j *pushjob.Job) {
			exp := time.Now().Add(-time.Hour)
			j.ExpiresAt = &exp
		}},

		{name: "alert too long", mutate: func(j *pushjob.Job) { j.Push = &pushjob.Content{Alert: long(4097)} }, want: []string{"push.alert"}, rule: "at most 4096 bytes"},
		{name: "title and body too long", mutate: func(j *pushjob.Job) { j.Push = &pushjob.Content{Title: long(4097), Body: long(4097)} }, want: []string{"push.title", "push.body"}},
		{name: "body 4096 bytes", mutate: func(j *pushjob.Job) { j.Push = &pushjob.Content{Body: long(4096)} }},
		{name: "sound, category, thread_id too long", mutate: func(j *pushjob.Job) {
			j.Push = &pushjob.Content{Sound: long(257), Category: long(257), ThreadID: long(257)}
		}, want: []string{"push.sound", "push.category", "push.thread_id"}},
		{name: "badge negative", mutate: func(j *pushjob.Job) { j.Push = &pushjob.Content{Badge: &pushjob.Badge{Value: -1}} }, want: []string{"push.badge"}, rule: "negative"},
		{name: "badge zero", mutate: func(j *pushjob.Job) { j.Push = &pushjob.Content{Badge: &pushjob.Badge{}} }},
		{name: "data key aps", mutate: func(j *pushjob.Job) { j.Push = &pushjob.Content{Data: map[string]any{"aps": 1}} }, want: []string{"push.data"}, rule: `"aps" is reserved by APNs`},
		{name: "data key empty", mutate: func(j *pushjob.Job) { j.Push = &pushjob.Content{Data: map[string]any{"": 1}} }, want: []string{"push.data"}, rule: "empty"},
		{name: "data keys reserved by FCM", mutate: func(j *pushjob.Job) {
			j.Push = &pushjob.Content{Data: map[string]any{"from": 1, "message_type": 1, "google.x": 1, "gcm.y": 1, "fromage": 1}}
		}, want: []string{"push.data", "push.data", "push.data", "push.data"}, rule: `"from" is reserved by FCM`},
		{name: "data too large", mutate: func(j *pushjob.Job) { j.Push = &pushjob.Content{Data: map[string]any{"k": long(4096)}} }, want: []string{"push.data"}, rule: "at most 4096 bytes as JSON"},
		{name: "data not encodable", mutate: func(j *pushjob.Job) { j.Push = &pushjob.Content{Data: map[string]any{"k": math.NaN()}} }, want: []string{"push.data"}, rule: "JSON-encodable"},

		{name: "ios badge negative", mutate: func(j *pushjob.Job) {
			j.Push = &pushjob.Content{IOS: &pushjob.PlatformContent{Badge: &pushjob.Badge{Value: -2}}}
		}, want: []string{"push.ios.badge"}},
		{name: "ios text and attributes", mutate: func(j *pushjob.Job) {
			j.Push = &pushjob.Content{IOS: &pushjob.PlatformContent{Alert: long(4097), ThreadID: long(257)}}
		}, want: []string{"push.ios.alert", "push.ios.thread_id"}},
		{name: "ios data aps", mutate: func(j *pushjob.Job) {
			j.Push = &pushjob.Content{IOS: &pushjob.PlatformContent{Data: map[string]any{"aps": 1}}}
		}, want: []string{"push.ios.data"}},
		{name: "ios data FCM word", mutate: func(j *pushjob.Job) {
			j.Push = &pushjob.Content{IOS: &pushjob.PlatformContent{Data: map[string]any{"from": 1}}}
		}},
		{name: "android title and channel", mutate: func(j *pushjob.Job) {
			j.Push = &pushjob.Content{Android: &pushjob.PlatformContent{Title: long(4097), ChannelID: long(257)}}
		}, want: []string{"push.android.title", "push.android.channel_id"}},
		{name: "android badge negative", mutate: func(j *pushjob.Job) {
			j.Push = &pushjob.Content{Android: &pushjob.PlatformContent{Badge: &pushjob.Badge{Value: -1}}}
		}, want: []string{"push.android.badge"}},
		{name: "android data empty key", mutate: func(j *pushjob.Job) {
			j.Push = &pushjob.Content{Android: &pushjob.PlatformContent{Data: map[string]any{"": 1}}}
		}, want: []string{"push.android.data"}},
		{name: "android data FCM word", mutate: func(j *pushjob.Job) {
			j.Push = &pushjob.Content{Android: &pushjob.PlatformContent{Data: map[string]any{"gcm.notification": 1}}}
		}, want: []string{"push.android.data"}},
		{name: "android data aps", mutate: func(j *pushjob.Job) {
			j.Push = &pushjob.Content{Android: &pushjob.PlatformContent{Data: map[string]any{"aps": 1}}}
		}},

		{name: "ios push_type alert", mutate: func(j *pushjob.Job) { j.Push = iosBlock(pushjob.PlatformContent{PushType: pushjob.PushTypeAlert}) }},
		{name: "ios push_type voip", mutate: func(j *pushjob.Job) {
			j.Push = iosBlock(pushjob.PlatformContent{PushType: pushjob.PushTypeVoIP, Alert: "Alice is calling", Data: map[string]any{"call": "c1"}})
		}},
		{name: "ios push_type background", mutate: func(j *pushjob.Job) {
			// The shared block's alert is for Android; iOS drops it.
			j.Push = &pushjob.Content{Alert: "hi", IOS: &pushjob.PlatformContent{PushType: pushjob.PushTypeBackground, Data: map[string]any{"sync": 1}}}
		}},
		{name: "ios push_type unknown", mutate: func(j *pushjob.Job) { j.Push = iosBlock(pushjob.PlatformContent{PushType: "silent"}) },
			want: []string{"push.ios.push_type"}, rule: `one of "alert", "background", "voip"`},
		{name: "ios push_type mdm refused", mutate: func(j *pushjob.Job) { j.Push = iosBlock(pushjob.PlatformContent{PushType: pushjob.PushTypeMDM}) },
			want: []string{"push.ios.push_type"}, rule: "MDM pushes are sent by device-management servers"},
		{name: "ios push_type complication", mutate: func(j *pushjob.Job) {
			j.Push = iosBlock(pushjob.PlatformContent{PushType: pushjob.PushTypeComplication, Alert: "3 unread", Badge: &pushjob.Badge{Value: 3}, Sound: "default"})
		}},
		{name: "ios push_type location", mutate: func(j *pushjob.Job) {
			j.Push = &pushjob.Content{Alert: "hi", IOS: &pushjob.PlatformContent{PushType: pushjob.PushTypeLocation, Data: map[string]any{"query": "q1"}}}
		}},
		{name: "ios push_type pushtotalk", mutate: func(j *pushjob.Job) {
			j.Push = iosBlock(pushjob.PlatformContent{PushType: pushjob.PushTypePushToTalk, Data: map[string]any{"speaker": "alice"}})
		}},
		{name: "ios push_type widgets", mutate: func(j *pushjob.Job) { j.Push = iosBlock(pushjob.PlatformContent{PushType: pushjob.PushTypeWidgets}) }},
		{name: "ios push_type controls", mutate: func(j *pushjob.Job) { j.Push = iosBlock(pushjob.PlatformContent{PushType: pushjob.PushTypeControls}) }},
		{name: "ios push_type fileprovider", mutate: func(j *pushjob.Job) {
			j.Push = iosBlock(pushjob.PlatformContent{PushType: pushjob.PushTypeFileProvider, Data: map[string]any{"container-identifier": "NSFileProviderWorkingSetContainerItemIdentifier"}})
		}},
		{name: "ios location with alert fields", mutate: func(j *pushjob.Job) {
			j.Push = iosBlock(pushjob.PlatformContent{PushType: pushjob.PushTypeLocation, Alert: "a", Badge: &pushjob.Badge{Value: 1}})
		}, want: []string{"push.ios.alert", "push.ios.badge"}, rule: `not with push_type "location"`},
		{name: "ios pushtotalk with sound", mutate: func(j *pushjob.Job) {
			j.Push = iosBlock(pushjob.PlatformContent{PushType: pushjob.PushTypePushToTalk, Sound: "default"})
		}, want: []string{"push.ios.sound"}, rule: `not with push_type "pushtotalk"`},
		{name: "ios widgets with title", mutate: func(j *pushjob.Job) {
			j.Push = iosBlock(pushjob.PlatformContent{PushType: pushjob.PushTypeWidgets, Title: "t"})
		}, want: []string{"push.ios.title"}, rule: `not with push_type "widgets"`},
		{name: "ios controls with body", mutate: func(j *pushjob.Job) {
			j.Push = iosBlock(pushjob.PlatformContent{PushType: pushjob.PushTypeControls, Body: "b", MutableContent: true})
		}, want: []string{"push.ios.body", "push.ios.mutable_content"}, rule: `not with push_type "controls"`},
		{name: "ios fileprovider with loc_key", mutate: func(j *pushjob.Job) {
			j.Push = iosBlock(pushjob.PlatformContent{PushType: pushjob.PushTypeFileProvider, LocKey: "K", Category: "C"})
		}, want: []string{"push.ios.category", "push.ios.loc_key"}, rule: `not with push_type "fileprovider"`},
		{name: "ios liveactivity update", mutate: func(j *pushjob.Job) {
			j.Push = iosBlock(pushjob.PlatformContent{PushType: pushjob.PushTypeLiveActivity, Title: "Delivery", Body: "2 min away", Sound: "chime.aiff",
				LiveActivity: &pushjob.LiveActivity{Event: "update", ContentState: map[string]any{"eta": 2}, StaleDate: 1700000000}})
		}},
		{name: "ios liveactivity end", mutate: func(j *pushjob.Job) {
			j.Push = iosBlock(pushjob.PlatformContent{PushType: pushjob.PushTypeLiveActivity, LiveActivity: &pushjob.LiveActivity{Event: "end", DismissalDate: 1700000000}})
		}},
		{name: "ios liveactivity start", mutate: func(j *pushjob.Job) {
			j.Push = iosBlock(pushjob.PlatformContent{PushType: pushjob.PushTypeLiveActivity, Alert: "Call started",
				LiveActivity: &pushjob.LiveActivity{Event: "start", ContentState: map[string]any{}, AttributesType: "CallAttributes", Attributes: map[string]any{"room": "r1"}}})
		}},
		{name: "ios liveactivity without live_activity", mutate: func(j *pushjob.Job) {
			j.Push = iosBlock(pushjob.PlatformContent{PushType: pushjob.PushTypeLiveActivity})
		},
			want: []string{"push.ios.live_activity"}, rule: "required"},
		{name: "ios liveactivity event missing", mutate: func(j *pushjob.Job) {
			j.Push = iosBlock(pushjob.PlatformContent{PushType: pushjob.PushTypeLiveActivity, LiveActivity: &pushjob.LiveActivity{}})
		}, want: []string{"push.ios.live_activity.event"}, rule: "required"},
		{name: "ios liveactivity event unknown", mutate: func(j *pushjob.Job) {
			j.Push = iosBlock(pushjob.PlatformContent{PushType: pushjob.PushTypeLiveActivity, LiveActivity: &pushjob.LiveActivity{Event: "pause"}})
		}, want: []string{"push.ios.live_activity.event"}, rule: `one of "start", "update", "end"`},
		{name: "ios liveactivity update without content_state", mutate: func(j *pushjob.Job) {
			j.Push = iosBlock(pushjob.PlatformContent{PushType: pushjob.PushTypeLiveActivity, LiveActivity: &pushjob.LiveActivity{Event: "update"}})
		}, want: []string{"push.ios.live_activity.content_state"}, rule: "required to update"},
		{name: "ios liveactivity start incomplete", mutate: func(j *pushjob.Job) {
			j.Push = iosBlock(pushjob.PlatformContent{PushType: pushjob.PushTypeLiveActivity, LiveActivity: &pushjob.LiveActivity{Event: "start"}})
		}, want: []string{"push.ios.live_activity.content_state", "push.ios.live_activity.attributes_type", "push.ios.live_activity.attributes"}, rule: "required to start"},
		{name: "ios liveactivity attributes on update, bad dates", mutate: func(j *pushjob.Job) {
			j.Push = iosBlock(pushjob.PlatformContent{PushType: pushjob.PushTypeLiveActivity, LiveActivity: &pushjob.LiveActivity{
				Event: "update", ContentState: map[string]any{"a": 1}, AttributesType: "T", Attributes: map[string]any{}, DismissalDate: -1, StaleDate: -1}})
		}, want: []string{"push.ios.live_activity.dismissal_date", "push.ios.live_activity.stale_date", "push.ios.live_activity.attributes_type", "push.ios.live_activity.attributes"}},
		{name: "ios liveactivity with badge and loc_key", mutate: func(j *pushjob.Job) {
			j.Push = iosBlock(pushjob.PlatformContent{PushType: pushjob.PushTypeLiveActivity, Badge: &pushjob.Badge{Value: 1}, LocKey: "K",
				LiveActivity: &pushjob.LiveActivity{Event: "end"}})
		}, want: []string{"push.ios.badge", "push.ios.loc_key"}, rule: `not with push_type "liveactivity"`},
		{name: "ios live_activity without its push type", mutate: func(j *pushjob.Job) {
			j.Push = iosBlock(pushjob.PlatformContent{LiveActivity: &pushjob.LiveActivity{Event: "end"}})
		}, want: []string{"push.ios.live_activity"}, rule: `only with push_type "liveactivity"`},
		{name: "android live_activity", mutate: func(j *pushjob.Job) {
			j.Push = &pushjob.Content{Android: &pushjob.PlatformContent{LiveActivity: &pushjob.LiveActivity{Event: "end"}}}
		}, want: []string{"push.android.live_activity"}, rule: "iOS only"},
		{name: "ios push_type wrong case", mutate: func(j *pushjob.Job) { j.Push = iosBlock(pushjob.PlatformContent{PushType: "VoIP"}) },
			want: []string{"push.ios.push_type"}},
		{name: "ios background with alert fields", mutate: func(j *pushjob.Job) {
			j.Push = iosBlock(pushjob.PlatformContent{
				PushType: pushjob.PushTypeBackground, Alert: "a", Title: "t", Body: "b", Badge: &pushjob.Badge{Value: 1},
				Sound: "default", Category: "MSG", MutableContent: true, LocKey: "K", TitleLocKey: "T",
			})
		}, want: []string{
			"push.ios.alert", "push.ios.title", "push.ios.body", "push.ios.badge", "push.ios.sound",
			"push.ios.category", "push.ios.mutable_content", "push.ios.loc_key", "push.ios.title_loc_key",
		}, rule: `not with push_type "background"`},
		{name: "ios background with thread_id", mutate: func(j *pushjob.Job) {
			j.Push = iosBlock(pushjob.PlatformContent{PushType: pushjob.PushTypeBackground, ThreadID: "t"})
		}},
		{name: "ios localized", mutate: func(j *pushjob.Job) {
			j.Push = iosBlock(pushjob.PlatformContent{
				LocKey: "MSG_FROM", LocArgs: []string{"Alice", "hello"}, TitleLocKey: "CONV_TITLE", TitleLocArgs: []string{"Team"},
			})
		}},
		{name: "ios loc_key 256 bytes", mutate: func(j *pushjob.Job) { j.Push = iosBlock(pushjob.PlatformContent{LocKey: long(256)}) }},
		{name: "ios loc keys too long", mutate: func(j *pushjob.Job) {
			j.Push = iosBlock(pushjob.PlatformContent{LocKey: long(257), TitleLocKey: long(257)})
		}, want: []string{"push.ios.loc_key", "push.ios.title_loc_key"}, rule: "at most 256 bytes"},
		{name: "ios loc_args without loc_key", mutate: func(j *pushjob.Job) {
			j.Push = iosBlock(pushjob.PlatformContent{LocArgs: []string{"a"}, TitleLocArgs: []string{"b"}})
		}, want: []string{"push.ios.loc_args", "push.ios.title_loc_args"}, rule: "needs loc_key"},
		{name: "ios loc_args 16", mutate: func(j *pushjob.Job) {
			j.Push = iosBlock(pushjob.PlatformContent{LocKey: "K", LocArgs: make([]string, 16)})
		}},
		{name: "ios loc_args 17", mutate: func(j *pushjob.Job) {
			j.Push = iosBlock(pushjob.PlatformContent{LocKey: "K", LocArgs: make([]string, 17)})
		}, want: []string{"push.ios.loc_args"}, rule: "at most 16 arguments"},
		{name: "ios loc_arg too long", mutate: func(j *pushjob.Job) {
			j.Push = iosBlock(pushjob.PlatformContent{TitleLocKey: "K", TitleLocArgs: []string{"a", long(4097)}})
		}, want: []string{"push.ios.title_loc_args[1]"}, rule: "at most 4096 bytes"},
		{name: "android iOS-only fields", mutate: func(j *pushjob.Job) {
			j.Push = &pushjob.Content{Android: &pushjob.PlatformContent{
				PushType: pushjob.PushTypeVoIP, LiveActivity: &pushjob.LiveActivity{Event: pushjob.LiveActivityEnd},
			}}
		}, want: []string{"push.android.push_type", "push.android.live_activity"},
			rule: "not for this platform: iOS only"},
		// Accepted and ignored before platforms were checked: jobs that
		// send one block to both phones stay valid.
		{name: "one block for both phones", mutate: func(j *pushjob.Job) {
			both := pushjob.PlatformContent{Category: "MSG", ThreadID: "t", MutableContent: true, ChannelID: "messages"}
			j.Push = &pushjob.Content{IOS: &both, Android: &both}
		}},
		{name: "android localized and click action", mutate: func(j *pushjob.Job) {
			j.Push = &pushjob.Content{Android: &pushjob.PlatformContent{
				LocKey: "new_message", LocArgs: []string{"Ada"}, TitleLocKey: "chat_title", TitleLocArgs: []string{"Team"},
				ClickAction: "im.chat.OPEN_CONVERSATION", Icon: "ic_stat_chat", ChannelID: "messages",
			}}
		}},
		{name: "android loc_args without key", mutate: func(j *pushjob.Job) {
			j.Push = &pushjob.Content{Android: &pushjob.PlatformContent{LocArgs: []string{"Ada"}}}
		}, want: []string{"push.android.loc_args"}, rule: "needs loc_key"},
		{name: "ios Android and web fields", mutate: func(j *pushjob.Job) {
			j.Push = iosBlock(pushjob.PlatformContent{ClickAction: "OPEN", Icon: "ic"})
		}, want: []string{"push.ios.click_action", "push.ios.icon"}, rule: "not for this platform"},
		{name: "web", mutate: func(j *pushjob.Job) {
			j.Push = &pushjob.Content{Web: &pushjob.PlatformContent{
				Title: "Ada", Body: "hi", ClickAction: "https://chat.example.com/c/1", Icon: "https://chat.example.com/icon.png",
				Data: map[string]any{"k": 1},
			}}
		}},
		{name: "web fields it has no use for", mutate: func(j *pushjob.Job) {
			j.Push = &pushjob.Content{Web: &pushjob.PlatformContent{
				Badge: &pushjob.Badge{Value: 1}, Sound: "ding", ChannelID: "c", LocKey: "K", PushType: pushjob.PushTypeAlert,
			}}
		}, want: []string{"push.web.badge", "push.web.sound", "push.web.channel_id", "push.web.loc_key", "push.web.push_type"},
			rule: "not for this platform"},
		{name: "web click_action not https", mutate: func(j *pushjob.Job) {
			j.Push = &pushjob.Content{Web: &pushjob.PlatformContent{ClickAction: "http://chat.example.com/c/1"}}
		}, want: []string{"push.web.click_action"}, rule: "an absolute https URL"},
		{name: "web click_action relative", mutate: func(j *pushjob.Job) {
			j.Push = &pushjob.Content{Web: &pushjob.PlatformContent{ClickAction: "/c/1"}}
		}, want: []string{"push.web.click_action"}, rule: "an absolute https URL"},
		{name: "web reserved data key", mutate: func(j *pushjob.Job) {
			j.Push = &pushjob.Content{Web: &pushjob.PlatformContent{Data: map[string]any{"from": "x"}}}
		}, want: []string{"push.web.data"}, rule: "reserved by FCM"},
		{name: "icon too long", mutate: func(j *pushjob.Job) {
			j.Push = &pushjob.Content{Android: &pushjob.PlatformContent{Icon: long(2049)}}
		}, want: []string{"push.android.icon"}, rule: "at most 2048 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := validJob()
			tt.mutate(&j)
			err := j.Validate()
			if got := fields(t, err); !slices.Equal(got, tt.want) {
				t.Fatalf("Validate() fields = %q, want %q (error: %v)", got, tt.want, err)
			}
			if tt.rule != "" {
				var ve *pushjob.ValidationError
				errors.As(err, &ve)
				if r := ve.Fields[0].Rule; !strings.Contains(r, tt.rule) {
					t.Errorf("rule = %q, want it to contain %q", r, tt.rule)
				}
			}
		})
	}
}

func iosBlock(p pushjob.PlatformContent) *pushjob.Content {
	return &pushjob.Content{IOS: &p}
}

// The iOS fields decode from the names the contract documents.
func TestDecodeIOSFields(t *testing.T) {
	in := `{"message_id":"m","conversation_id":"c","recipients":["a"],"push":{"ios":{` +
		`"push_type":"voip","loc_key":"MSG","loc_args":["Alice","hi"],"title_loc_key":"T","title_loc_args":["x"],"mutable_content":true}}}`
	j, err := pushjob.Decode([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Validate(); err != nil {
		t.Fatal(err)
	}
	p := j.Push.IOS
	if p.PushType != pushjob.PushTypeVoIP || p.LocKey != "MSG" || !slices.Equal(p.LocArgs, []string{"Alice", "hi"}) ||
		p.TitleLocKey != "T" || !slices.Equal(p.TitleLocArgs, []string{"x"}) || !p.MutableContent {
		t.Errorf("decoded %+v", *p)
	}
	if _, err := pushjob.Decode([]byte(`{"message_id":"m","conversation_id":"c","recipients":["a"],"push":{"ios":{"loc_args":"Alice"}}}`)); err == nil {
		t.Error("loc_args as a string decoded")
	}
}

// A NUL that arrives as JSON's \u0000 is refused by Validate, before it
// reaches a database that would refuse it on every retry.
func TestValidateRefusesNULFromJSON(t *testing.T) {
	in := `{"message_id":"m\u0000","conversation_id":"c\u0000","from_client_id":"f\u0000",` +
		`"app_id":"a\u0000","recipients":["r\u0000"],"mentions":["x\u0000"]}`
	j, err := pushjob.Decode([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	err = j.Validate()
	want := []string{"message_id", "conversation_id", "app_id", "from_client_id", "recipients[0]", "mentions[0]"}
	if got := fields(t, err); !slices.Equal(got, want) {
		t.Fatalf("fields = %q, want %q", got, want)
	}
	var ve *pushjob.ValidationError
	errors.As(err, &ve)
	for _, f := range ve.Fields {
		if f.Rule != "printable UTF-8 only, no control characters, no invisible or format characters" {
			t.Errorf("%s: rule %q", f.Field, f.Rule)
		}
	}
}

// A client learns of every mistake in one round trip.
func TestValidateReportsAllAtOnce(t *testing.T) {
	j := validJob()
	j.MessageID = ""
	j.Recipients = []string{"bob", "bob"}
	j.Priority = "urgent"
	j.Push = &pushjob.Content{IOS: &pushjob.PlatformContent{Badge: &pushjob.Badge{Value: -1}}}

	err := j.Validate()
	want := []string{"message_id", "recipients[1]", "priority", "push.ios.badge"}
	if got := fields(t, err); !slices.Equal(got, want) {
		t.Fatalf("fields = %q, want %q", got, want)
	}
	const wantMsg = `pushjob: invalid job: message_id: required; recipients[1]: duplicate of recipients[0]; ` +
		`priority: one of "high", "normal", "low"; push.ios.badge: must not be negative`
	if err.Error() != wantMsg {
		t.Errorf("Error() =\n%s\nwant\n%s", err, wantMsg)
	}
}

func TestValidateTooManyRecipients(t *testing.T) {
	j := validJob()
	j.Recipients = make([]string, pushjob.MaxRecipients+1)
	for i := range j.Recipients {
		j.Recipients[i] = fmt.Sprint("client-", i)
	}
	err := j.Validate()
	if got := fields(t, err); !slices.Equal(got, []string{"recipients"}) {
		t.Fatalf("fields = %q, want [recipients]", got)
	}
	if !strings.Contains(err.Error(), "at most 1000000 recipients") {
		t.Errorf("error %q does not give the limit", err)
	}

	j.Recipients = j.Recipients[:pushjob.MaxRecipients]
	if err := j.Validate(); err != nil {
		t.Errorf("%d recipients: %v", pushjob.MaxRecipients, err)
	}
}

// Element errors are capped so that a list of bad ids does not make a
// megabyte of errors; the rest are counted.
func TestValidateCapsListErrors(t *testing.T) {
	j := validJob()
	j.Recipients = make([]string, 25) // all empty
	err := j.Validate()
	got := fields(t, err)
	var want []string
	for i := range 10 {
		want = append(want, fmt.Sprintf("recipients[%d]", i))
	}
	want = append(want, "recipients")
	if !slices.Equal(got, want) {
		t.Fatalf("fields = %q, want %q", got, want)
	}
	var ve *pushjob.ValidationError
	errors.As(err, &ve)
	if r := ve.Fields[10].Rule; r != "15 more invalid elements not listed" {
		t.Errorf("summary rule = %q", r)
	}
}

// The HTTP API sends Fields as its 400 body.
func TestValidationErrorJSON(t *testing.T) {
	j := validJob()
	j.MessageID, j.Recipients = "", []string{"a", ""}
	var ve *pushjob.ValidationError
	if !errors.As(j.Validate(), &ve) {
		t.Fatal("no *ValidationError")
	}
	b, err := json.Marshal(ve.Fields)
	if err != nil {
		t.Fatal(err)
	}
	const want = `[{"field":"message_id","rule":"required"},{"field":"recipients[1]","rule":"must not be empty"}]`
	if string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
}

// ApplyDefaults is Normalize without the stamp: a worker must not take
// its own time for the message's.
func TestApplyDefaults(t *testing.T) {
	var j pushjob.Job
	j.ApplyDefaults()
	if j.AppID != pushjob.DefaultApp || j.Priority != pushjob.PriorityNormal || !j.Timestamp.IsZero() {
		t.Errorf("ApplyDefaults = app %q, priority %q, timestamp %v; want defaults and no timestamp", j.AppID, j.Priority, j.Timestamp)
	}
}

func TestNormalize(t *testing.T) {
	var j pushjob.Job
	before := time.Now()
	j.Normalize()
	if j.AppID != pushjob.DefaultApp || j.Priority != pushjob.PriorityNormal {
		t.Errorf("app, priority = %q, %q; want %q, %q", j.AppID, j.Priority, pushjob.DefaultApp, pushjob.PriorityNormal)
	}
	if j.Timestamp.Before(before.Add(-time.Second)) || j.Timestamp.After(time.Now().Add(time.Second)) {
		t.Errorf("Timestamp = %v, want about now", j.Timestamp)
	}

	set := fullJob()
	want := fullJob()
	set.Normalize()
	if set.AppID != want.AppID || set.Priority != want.Priority || !set.Timestamp.Equal(want.Timestamp) {
		t.Errorf("Normalize changed fields already set: %+v", set)
	}
}

func TestExpiry(t *testing.T) {
	ts := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	at := ts.Add(5 * time.Minute)
	tests := []struct {
		name string
		job  pushjob.Job
		want time.Time
	}{
		{"none", pushjob.Job{Timestamp: ts}, time.Time{}},
		{"ttl", pushjob.Job{Timestamp: ts, TTLSeconds: 90}, ts.Add(90 * time.Second)},
		{"ttl without timestamp", pushjob.Job{TTLSeconds: 90}, time.Time{}},
		{"expires_at", pushjob.Job{Timestamp: ts, ExpiresAt: &at}, at},
	}
	for _, tt := range tests {
		if got := tt.job.Expiry(); !got.Equal(tt.want) {
			t.Errorf("%s: Expiry() = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestBadgeJSON(t *testing.T) {
	for _, tt := range []struct {
		badge pushjob.Badge
		json  string
	}{
		{pushjob.Badge{Increment: true}, `"Increment"`},
		{pushjob.Badge{Value: 3}, `3`},
		{pushjob.Badge{}, `0`},
	} {
		b, err := json.Marshal(tt.badge)
		if err != nil || string(b) != tt.json {
			t.Errorf("Marshal(%+v) = %s, %v; want %s", tt.badge, b, err, tt.json)
		}
		var got pushjob.Badge
		if err := json.Unmarshal([]byte(tt.json), &got); err != nil || got != tt.badge {
			t.Errorf("Unmarshal(%s) = %+v, %v; want %+v", tt.json, got, err, tt.badge)
		}
	}

	// Round trip inside content, where the pointer and omitempty matter.
	in := pushjob.Content{Badge: &pushjob.Badge{Increment: true}, IOS: &pushjob.PlatformContent{Badge: &pushjob.Badge{Value: 7}}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"badge":"Increment","ios":{"badge":7}}`; string(b) != want {
		t.Errorf("Marshal = %s, want %s", b, want)
	}
	var out pushjob.Content
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if *out.Badge != *in.Badge || *out.IOS.Badge != *in.IOS.Badge {
		t.Errorf("round trip = %+v / %+v, want %+v / %+v", *out.Badge, *out.IOS.Badge, *in.Badge, *in.IOS.Badge)
	}

	for _, bad := range []string{`"increment"`, `"3"`, `""`, `3.5`, `true`, `{}`, `[1]`} {
		var b pushjob.Badge
		err := json.Unmarshal([]byte(bad), &b)
		if err == nil {
			t.Errorf("Unmarshal(%s) = %+v, want an error", bad, b)
			continue
		}
		if !strings.Contains(err.Error(), `"Increment"`) {
			t.Errorf("Unmarshal(%s) error %q does not say what is wanted", bad, err)
		}
	}
}
