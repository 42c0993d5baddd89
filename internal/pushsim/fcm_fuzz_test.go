package pushsim

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// The fuzz targets run their seed corpora as ordinary tests; run one with
// go test -run XXX -fuzz FuzzName -fuzztime 20s ./internal/pushsim to
// explore further.

// fcmFuzzToken is a token shaped like a real one; the parser does not judge
// tokens, so any string will do.
const fcmFuzzToken = "cAbCdEfGhIj:APA91bHqL0r3m1psumd0l0rs1tam3tc0ns3ct3tur4d1p1sc1ng3l1t"

func FuzzParseSendRequest(f *testing.F) {
	for _, s := range []string{
		``,
		`{}`,
		`[]`,
		`null`,
		`{"message":{"token":"` + fcmFuzzToken + `"}}`,
		`{"message":{"topic":"news"}}`,
		`{"message":{"topic":"/topics/news","data":{"a":"b"}}}`,
		`{"message":{"condition":"'a' in topics && !('b' in topics || 'c' in topics)"}}`,
		`{"validate_only":true,"message":{"topic":"a"}}`,
		`{"validateOnly":false,"message":{"token":"t","name":null}}`,
		`{"message":{"token":"t","topic":"a"}}`,
		`{"message":{"token":"t","token":"u"}}`,
		`{"message":{"token":"t","token":null}}`,
		`{"message":{"topic":"a"},"message":{"data":{}}}`,
		`{"message":{"topic":"a","data":{"a":"b","a":"c"}}}`,
		`{"message":{"topic":"a"}} {}`,
		`{"message":{"topic":"a",}}`,
		`{"message":null}`,
		`{"message":{"token":"t","data":{"k":"` + strings.Repeat(`\u003c`, 1000) + `"}}}`,
		`{"message":{"token":"t","data":{"k":"` + strings.Repeat("x", 4095) + `"}}}`,
		`{"message":{"token":"t","data":{"k":"` + strings.Repeat("x", 4096) + `"}}}`,
		`{"message":{"topic":"t","data":{"k":"` + strings.Repeat("x", 2048) + `"}}}`,
		`{"message":{"token":"t","notification":{"title":"T","body":"B","image":"https://x/i.png"},` +
			`"android":{"collapseKey":"k","priority":"HIGH","ttl":"3.5s","data":{"a":"b"},` +
			`"notification":{"clickAction":"OPEN","body_loc_args":["a","b"],"color":"#ff8800","notificationCount":"3",` +
			`"vibrateTimings":["0.1s"],"lightSettings":{"color":{"red":1},"lightOnDuration":"1s","lightOffDuration":"2s"}}},` +
			`"apns":{"headers":{"apns-priority":"10"},"payload":{"aps":{"alert":"x"},"n":[1,{"a":null}]}},` +
			`"webpush":{"notification":{"title":"x"},"fcm_options":{"link":"https://example.com"}},` +
			`"fcm_options":{"analytics_label":"x"}}}`,
		`{"message":{"token":"t","android":{"collapse_key":["a"]}}}`,
		`{"message":{"token":"t","android":{"ttl":"2419201s"}}}`,
		`{"message":{"token":"t","android":{"notification":{"event_time":"2024-05-01T12:00:00Z"}}}}`,
		`{"message":{"token":"t","apns":{"payload":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}}}`,
		"{\"message\":{\"topic\":\"a\",\"data\":{\"\xff\":\"\xfe\"}}}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, fe := parseSendRequest(body)
		if fe != nil {
			if req.target != "" || req.message != nil {
				t.Errorf("refused with %q but returned a request: %+v", fe.desc, req)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted a body that is not JSON: %q", body)
		}
		// encoding/json matches names case-insensitively; the FCM parser
		// does not, so look the names up exactly.
		var top map[string]json.RawMessage
		if err := json.Unmarshal(body, &top); err != nil {
			t.Fatalf("accepted a body that is not an object: %v", err)
		}
		var msg map[string]json.RawMessage
		if err := json.Unmarshal(top["message"], &msg); err != nil || msg == nil {
			t.Fatalf("accepted a body without a message object (%v): %q", err, body)
		}
		var targets []string
		for _, name := range []string{"token", "topic", "condition"} {
			if v, ok := msg[name]; ok && string(v) != "null" {
				targets = append(targets, name)
			}
		}
		if len(targets) != 1 || targets[0] != req.target {
			t.Fatalf("accepted a message with targets %v (parser says %q): %q", targets, req.target, body)
		}
		var value string
		if err := json.Unmarshal(msg[req.target], &value); err != nil {
			t.Fatalf("target %s is not a string: %v", req.target, err)
		}
		if got := map[string]string{"token": req.token, "topic": req.topic, "condition": req.condition}[req.target]; got != value {
			t.Errorf("target %s = %q, body says %q", req.target, got, value)
		}
		// The receipt keeps the message as received.
		if !bytes.Equal(bytes.TrimSpace(req.message), bytes.TrimSpace(top["message"])) {
			t.Errorf("kept message %q, body has %q", req.message, top["message"])
		}
		size := fcmReferenceSize(t, msg)
		if size != req.size {
			t.Errorf("payload size %d, reference %d: %q", req.size, size, body)
		}
		limit := fcmMaxPayload
		if req.target != "token" {
			limit = fcmMaxTopicPayload
		}
		if size > limit {
			t.Errorf("accepted a payload of %d bytes, over %d", size, limit)
		}
	})
}

// fcmReferenceSize counts a message's payload the slow way, from a generic
// decoding, to check the parser's running count.
func fcmReferenceSize(t *testing.T, msg map[string]json.RawMessage) int {
	t.Helper()
	// field finds a field by its proto name or its lowerCamelCase one;
	// the parser has refused messages that set both.
	field := func(obj map[string]json.RawMessage, name string) json.RawMessage {
		if v, ok := obj[name]; ok {
			return v
		}
		return obj[lowerCamel(name)]
	}
	object := func(raw json.RawMessage) map[string]json.RawMessage {
		var m map[string]json.RawMessage
		if raw != nil {
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatalf("accepted %q where an object belongs: %v", raw, err)
			}
		}
		return m
	}
	n := 0
	stringMap := func(raw json.RawMessage) {
		var m map[string]string
		if raw != nil {
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatalf("accepted %q where a map of strings belongs: %v", raw, err)
			}
		}
		for k, v := range m {
			n += len(k) + len(v)
		}
	}
	stringFields := func(obj map[string]json.RawMessage, names ...string) {
		for _, name := range names {
			raw := field(obj, name)
			if raw == nil || string(raw) == "null" {
				continue
			}
			var s string
			if err := json.Unmarshal(raw, &s); err == nil {
				n += len(name) + len(s)
				continue
			}
			var list []string
			if err := json.Unmarshal(raw, &list); err != nil {
				t.Fatalf("accepted %s = %q, neither a string nor a list of them", name, raw)
			}
			n += len(name)
			for _, s := range list {
				n += len(s)
			}
		}
	}
	stringMap(field(msg, "data"))
	stringFields(object(field(msg, "notification")), "title", "body", "image")
	android := object(field(msg, "android"))
	stringMap(field(android, "data"))
	stringFields(object(field(android, "notification")),
		"title", "body", "icon", "color", "sound", "tag", "click_action", "body_loc_key", "body_loc_args",
		"title_loc_key", "title_loc_args", "channel_id", "ticker", "image")
	return n
}

func FuzzCheckCondition(f *testing.F) {
	for _, s := range []string{
		"",
		"'a' in topics",
		`"a" in topics`,
		"'dogs' in topics && ('cats' in topics || !('birds' in topics))",
		"'a' in topics || 'b' in topics || 'c' in topics || 'd' in topics || 'e' in topics",
		"'a' in topics || 'b' in topics || 'c' in topics || 'd' in topics || 'e' in topics || 'f' in topics",
		"'a' in topics &&",
		"'a' intopics",
		"'a' in topicsx",
		"('a' in topics",
		"'a' in topics)",
		"'a b' in topics",
		"'' in topics",
		"'a in topics",
		"!!!!'a' in topics",
		strings.Repeat("!", 33) + "'a' in topics",
		strings.Repeat("(", 33) + "'a' in topics" + strings.Repeat(")", 33),
		strings.Repeat("!(", 20) + "'a' in topics" + strings.Repeat(")", 20),
		strings.Repeat("!", 20_000),
		"'" + strings.Repeat("a", 900) + "' in topics",
		"'" + strings.Repeat("a", 901) + "' in topics",
		"\t'a'\tin\ttopics\t",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		start := time.Now()
		why := checkCondition(s)
		// The parser's work is linear in a capped length, so even under
		// the race detector on a loaded machine it is far inside this.
		if d := time.Since(start); d > time.Second {
			t.Errorf("checkCondition took %v on %d bytes", d, len(s))
		}
		if why != "" {
			return
		}
		if len(s) > fcmMaxConditionLen {
			t.Errorf("accepted a condition of %d bytes", len(s))
		}
		// Topic names cannot hold quotes, so quotes come two a topic.
		if q := strings.Count(s, "'") + strings.Count(s, `"`); q%2 != 0 || q/2 > fcmMaxConditionTopics || q == 0 {
			t.Errorf("accepted %q with %d quotes", s, q)
		}
		if strings.Count(s, "(") != strings.Count(s, ")") {
			t.Errorf("accepted %q with unbalanced parentheses", s)
		}
	})
}

func FuzzFCMTokens(f *testing.F) {
	m := NewMinter("fuzz")
	for i, fate := range []Fate{FateValid, FateUnregistered, FateMalformed} {
		tok := m.FCM(fate, "proj-a", uint64(i))
		f.Add(tok, uint64(i), uint(0), byte('A'))
		f.Add(tok[:len(tok)-1], uint64(i), uint(fcmHead), byte('-'))
		f.Add(tok+"A", uint64(i), uint(len(tok)-1), byte('B'))
		f.Add(strings.Replace(tok, fcmMarker, ":APA91c", 1), uint64(i), uint(42), byte('_'))
	}
	f.Add("", uint64(0), uint(0), byte(0))
	f.Add(":APA91b", uint64(1<<63), uint(7), byte(':'))
	f.Add(NewMinter("other").FCM(FateValid, "proj-a", 1), uint64(0), uint(100), byte('z'))
	f.Fuzz(func(t *testing.T, s string, serial uint64, pos uint, c byte) {
		if info, ok := m.ParseFCM(s); ok {
			if !WellFormedFCM(s) {
				t.Errorf("ParseFCM accepted %q, which is not well formed", s)
			}
			if _, known := fateNames[info.Fate]; !known {
				t.Errorf("ParseFCM(%q) has fate %d", s, info.Fate)
			}
		}

		tok := m.FCM(FateValid, "proj-a", serial)
		if info, ok := m.ParseFCM(tok); !ok || info.Fate != FateValid || info.Scope != ScopeHash("proj-a") {
			t.Fatalf("ParseFCM(minted %q) = %+v, %v; want valid for proj-a", tok, info, ok)
		}
		// A minted token cut short, made longer, or with any one
		// character changed is not a token this seed minted.
		i := int(pos % uint(len(tok)))
		if _, ok := m.ParseFCM(tok[:i]); ok {
			t.Errorf("ParseFCM accepted the minted token cut to %d bytes: %q", i, tok[:i])
		}
		if _, ok := m.ParseFCM(tok + string([]byte{c})); ok {
			t.Errorf("ParseFCM accepted the minted token with %q appended", c)
		}
		if tok[i] == c {
			return
		}
		flipped := tok[:i] + string([]byte{c}) + tok[i+1:]
		if info, ok := m.ParseFCM(flipped); ok {
			t.Errorf("ParseFCM accepted %q (%+v): the minted token with byte %d changed from %q to %q", flipped, info, i, tok[i], c)
		}
	})
}
