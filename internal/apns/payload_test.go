package apns

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pushd/pushd/internal/content"
)

func intp(n int) *int { return &n }

// badgeString shows a badge in failure messages.
func badgeString(b *int) string {
	if b == nil {
		return "none"
	}
	return strconv.Itoa(*b)
}

func TestAPNsPayloadShape(t *testing.T) {
	full := content.Platform{
		Title: "alice", Body: "hi <b>&</b> \"you\"", Sound: "default", Category: "MSG",
		ThreadID: "conv-1", MutableContent: true,
		Data: map[string]any{"z": 1, "a": map[string]any{"x": []any{true, nil}}, "aps": map[string]any{"alert": "clobbered"}},
	}
	checkPayloads(t, []payloadCase{
		{"everything", full, intp(5),
			`{"aps":{"alert":{"title":"alice","body":"hi <b>&</b> \"you\""},"sound":"default","category":"MSG","thread-id":"conv-1","mutable-content":1,"badge":5},"a":{"x":[true,null]},"z":1}`},
		{"no badge", content.Platform{Body: "b"}, nil, `{"aps":{"alert":{"body":"b"}}}`},
		{"badge zero clears", content.Platform{Body: "b"}, intp(0), `{"aps":{"alert":{"body":"b"},"badge":0}}`},
		{"title only", content.Platform{Title: "t"}, nil, `{"aps":{"alert":{"title":"t"}}}`},
		{"alert is the body", content.Platform{Alert: "a"}, nil, `{"aps":{"alert":{"body":"a"}}}`},
		{"badge alone", content.Platform{}, intp(3), `{"aps":{"badge":3}}`},
		{"empty", content.Platform{}, nil, `{"aps":{}}`},
		{"data aps dropped", content.Platform{Data: map[string]any{"aps": 1, "k": "v"}}, nil, `{"aps":{},"k":"v"}`},
	})
}

func TestAPNsPayloadEscapes(t *testing.T) {
	body := "q\" b\\ n\n r\r t\t c\x01\x1f del\x7f ls\u2028 bad\xff end"
	got, err := payloadOnce(content.Platform{Body: body}, nil, MaxPayload)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Aps struct{ Alert struct{ Body string } }
	}
	if err := json.Unmarshal(got, &v); err != nil {
		t.Fatalf("%v: %s", err, got)
	}
	want := strings.ToValidUTF8(body, "\uFFFD")
	if v.Aps.Alert.Body != want {
		t.Errorf("body round trip: got %q, want %q", v.Aps.Alert.Body, want)
	}
}

// decoded is the part of a payload the truncation tests look at.
type decoded struct {
	Aps struct {
		Alert struct{ Title, Body string }
		Badge *int
	}
}

// checkPayload asserts what every payload must be: within limit, valid UTF-8
// and JSON, with the body either whole or the longest prefix ending on a
// character boundary that fits, plus "…".
func checkPayload(t *testing.T, p content.Platform, badge *int, limit int, got []byte) {
	t.Helper()
	if len(got) > limit {
		t.Fatalf("payload is %d bytes, over %d", len(got), limit)
	}
	if !utf8.Valid(got) {
		t.Fatalf("payload is not valid UTF-8")
	}
	var v decoded
	if err := json.Unmarshal(got, &v); err != nil {
		t.Fatalf("payload is not valid JSON: %v", err)
	}
	if (v.Aps.Badge == nil) != (badge == nil) || badge != nil && *v.Aps.Badge != *badge {
		t.Fatalf("badge = %s, want %s", badgeString(v.Aps.Badge), badgeString(badge))
	}
	if v.Aps.Alert.Body == p.Body {
		return
	}
	prefix, ok := strings.CutSuffix(v.Aps.Alert.Body, ellipsis)
	if !ok || !strings.HasPrefix(p.Body, prefix) {
		t.Fatalf("truncated body is not a prefix of the original plus %q: %.40q…", ellipsis, v.Aps.Alert.Body)
	}
	offsets, _ := cuts(p.Body, 0, math.MaxInt)
	i, ok := slices.BinarySearch(offsets, len(prefix))
	if !ok {
		t.Fatalf("body cut at byte %d, not a character boundary: …%q|%q", len(prefix), p.Body[max(0, len(prefix)-8):len(prefix)], p.Body[len(prefix):min(len(p.Body), len(prefix)+8)])
	}
	// Longest: the next boundary would not have fitted.
	q := p
	q.Body = p.Body[:offsets[i+1]] + ellipsis
	longer, err := payloadOnce(q, badge, math.MaxInt32)
	if err != nil {
		t.Fatal(err)
	}
	if len(longer) <= limit {
		t.Fatalf("cut at byte %d, but %d would have fitted (%d bytes)", len(prefix), offsets[i+1], len(longer))
	}
}

var longTexts = map[string]string{
	"ascii":     strings.Repeat("The quick brown fox jumps over the lazy dog. ", 200),
	"chinese":   strings.Repeat("你好世界，这是一条很长的消息。", 300),
	"emoji":     strings.Repeat("👨‍👩‍👧‍👦🇨🇳👍🏽❤️🏳️‍🌈x", 300),
	"combining": strings.Repeat("e\u0301a\u0308\u0323", 2000),
	"escapes":   strings.Repeat("\"q\"\\\n\t\x01<>&", 700),
	"mixed":     strings.Repeat("a你👍🏽\n\"é", 700),
}

func TestAPNsTruncation(t *testing.T) {
	for name, text := range longTexts {
		for _, limit := range []int{MaxPayload, MaxVoIPPayload} {
			for _, badge := range []*int{nil, intp(0), intp(42), intp(-1), intp(math.MaxInt)} {
				p := content.Platform{Title: "alice", Body: text, Sound: "default", ThreadID: "conv-1", Data: map[string]any{"conversation": "conv-1"}}
				got, err := payloadOnce(p, badge, limit)
				if err != nil {
					t.Fatalf("%s, limit %d: %v", name, limit, err)
				}
				checkPayload(t, p, badge, limit, got)
				if len(got) < limit-32 {
					// A cut wastes at most one character cluster.
					t.Errorf("%s, limit %d: payload is %d bytes: too much cut", name, limit, len(got))
				}
			}
		}
	}
}

func TestAPNsTruncationFlags(t *testing.T) {
	// Cutting between the two regional indicators of a flag would show
	// two letters; every cut of a run of flags must fall between flags.
	p := content.Platform{Body: strings.Repeat("🇨🇳", 1000)}
	for limit := 40; limit < 200; limit++ {
		got, err := payloadOnce(p, nil, limit)
		if err != nil {
			t.Fatalf("limit %d: %v", limit, err)
		}
		checkPayload(t, p, nil, limit, got)
		var v decoded
		json.Unmarshal(got, &v)
		if n := len(strings.TrimSuffix(v.Aps.Alert.Body, ellipsis)); n%8 != 0 {
			t.Fatalf("limit %d: cut inside a flag at byte %d", limit, n)
		}
	}
}

func TestAPNsExactFit(t *testing.T) {
	for _, limit := range []int{MaxPayload, MaxVoIPPayload} {
		for _, badge := range []*int{nil, intp(7), intp(1234)} {
			base := content.Platform{Title: "alice", ThreadID: "conv-1", Body: "x"}
			small, err := payloadOnce(base, badge, limit)
			if err != nil {
				t.Fatal(err)
			}
			n := limit - len(small) + 1 // body length for exactly limit bytes

			p := base
			p.Body = strings.Repeat("a", n)
			got, err := payloadOnce(p, badge, limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != limit {
				t.Errorf("limit %d badge %s: exact fit is %d bytes", limit, badgeString(badge), len(got))
			}
			checkPayload(t, p, badge, limit, got)
			if !strings.Contains(string(got), `"body":"`+p.Body+`"`) {
				t.Errorf("limit %d badge %s: an exact fit was truncated", limit, badgeString(badge))
			}

			// One byte more: cut to n-3 letters and a 3-byte "…", exactly
			// limit again.
			p.Body = strings.Repeat("a", n+1)
			got, err = payloadOnce(p, badge, limit)
			if err != nil {
				t.Fatal(err)
			}
			checkPayload(t, p, badge, limit, got)
			if !strings.Contains(string(got), `"body":"`+strings.Repeat("a", n-3)+ellipsis+`"`) {
				t.Errorf("limit %d badge %s: one byte over, got body %.30q…", limit, badgeString(badge), got)
			}
			if len(got) != limit {
				t.Errorf("limit %d badge %s: one byte over gives %d bytes, want %d", limit, badgeString(badge), len(got), limit)
			}
		}
	}
}

func TestAPNsTooLarge(t *testing.T) {
	big := strings.Repeat("t", MaxPayload)
	for name, p := range map[string]content.Platform{
		"title":         {Title: big, Body: "b"},
		"title no body": {Title: big},
		"data":          {Body: "b", Data: map[string]any{"blob": big}},
	} {
		_, err := payloadOnce(p, nil, MaxPayload)
		var se *SizeError
		if !errors.As(err, &se) {
			t.Errorf("%s: err = %v, want a *SizeError", name, err)
			continue
		}
		if se.Max != MaxPayload || se.Need <= MaxPayload {
			t.Errorf("%s: %+v", name, se)
		}
		if !strings.Contains(err.Error(), "4096-byte limit") {
			t.Errorf("%s: error %q does not name the limit", name, err)
		}
	}

	// A template that fits without a badge but not with this one.
	p := content.Platform{Title: "t", Body: "b"}
	small, _ := payloadOnce(p, nil, MaxPayload)
	p.Title = strings.Repeat("t", MaxPayload-len(small)-2)
	tmpl, err := NewPayloadTemplate(p, MaxPayload)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := tmpl.Payload(nil); err != nil || len(got) > MaxPayload {
		t.Fatalf("no badge: %d bytes, %v", len(got), err)
	}
	if _, err := tmpl.Payload(intp(123456)); !errors.As(err, new(*SizeError)) {
		t.Errorf("with a badge: err = %v, want a *SizeError", err)
	}

	if _, err := payloadOnce(content.Platform{Body: "b"}, nil, 0); err == nil {
		t.Error("a limit of 0 was accepted")
	}
	if _, err := payloadOnce(content.Platform{Data: map[string]any{"f": func() {}}}, nil, MaxPayload); err == nil || !strings.Contains(err.Error(), `"f"`) {
		t.Errorf("unencodable data: err = %v, want one naming the key", err)
	}
}

func TestAPNsTemplateMatchesPayload(t *testing.T) {
	for name, text := range longTexts {
		for _, body := range []string{text, text[:len(text)/3], "short"} {
			p := content.Platform{Title: "alice", Body: body, Category: "c"}
			tmpl, err := NewPayloadTemplate(p, MaxPayload)
			if err != nil {
				t.Fatal(err)
			}
			for _, badge := range []*int{nil, intp(1), intp(99999), intp(math.MinInt)} {
				a, err1 := tmpl.Payload(badge)
				b, err2 := payloadOnce(p, badge, MaxPayload)
				if string(a) != string(b) || (err1 == nil) != (err2 == nil) {
					t.Errorf("%s: template and APNsPayload differ for badge %s", name, badgeString(badge))
				}
				checkPayload(t, p, badge, MaxPayload, a)
			}
		}
	}
}

func TestCuts(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want []int
	}{
		{"", []int{0}},
		{"ab", []int{0, 1, 2}},
		{"你好", []int{0, 3, 6}},
		{"e\u0301x", []int{0, 3, 4}},                      // é as e + combining acute
		{"👍🏽x", []int{0, 8, 9}},                           // skin tone modifier
		{"❤️x", []int{0, 6, 7}},                           // variation selector 16
		{"👨‍👩‍👧x", []int{0, 18, 19}},                      // ZWJ family
		{"🇨🇳🇺🇸🇯", []int{0, 8, 16, 20}},                    // flags, then a lone indicator
		{"a\r\nb", []int{0, 1, 3, 4}},                     // CRLF stays whole
		{"\xff\xfe", []int{0, 1, 2}},                      // invalid bytes are cut one by one
		{"🏴\U000E0067\U000E0062\U000E007F", []int{0, 16}}, // subdivision flag
	} {
		offsets, encoded := cuts(tc.s, 0, math.MaxInt)
		if !slices.Equal(offsets, tc.want) {
			t.Errorf("cuts(%q) = %v, want %v", tc.s, offsets, tc.want)
		}
		for i, off := range offsets {
			if n := len(appendStringBody(nil, tc.s[:off])); encoded[i] != n {
				t.Errorf("cuts(%q): encoded[%d] = %d, want %d", tc.s, i, encoded[i], n)
			}
		}
	}
}

func TestCutsWindow(t *testing.T) {
	s := "ab\"c你e\u0301" // encoded: a b \" c 你 e+U+0301 = 1 1 2 1 3 3
	for _, tc := range []struct {
		lo, hi int
		want   []int
	}{
		{0, 0, []int{0}},
		{0, 1, []int{0, 1}},
		{0, 2, []int{0, 1, 2}},
		{0, 3, []int{0, 1, 2}}, // `ab\"` is 4 bytes encoded
		{0, 4, []int{0, 1, 2, 3}},
		{0, 100, []int{0, 1, 2, 3, 4, 7, 10}},
		{3, 100, []int{2, 3, 4, 7, 10}}, // 2 is the last place below 3 bytes
		{9, 9, []int{7}},                // no place in [9, 9]: the last below
		{9, 100, []int{7, 10}},          // never between e and its accent
	} {
		if got, _ := cuts(s, tc.lo, tc.hi); !slices.Equal(got, tc.want) {
			t.Errorf("cuts(%q, %d, %d) = %v, want %v", s, tc.lo, tc.hi, got, tc.want)
		}
	}
}

func TestAPNsTinyLimit(t *testing.T) {
	// A body that fits whole needs no room for an ellipsis.
	p := content.Platform{Body: "hi"}
	small, err := payloadOnce(p, nil, MaxPayload)
	if err != nil {
		t.Fatal(err)
	}
	got, err := payloadOnce(p, nil, len(small))
	if err != nil || string(got) != string(small) {
		t.Errorf("exact fit of a 2-byte body: %s, %v", got, err)
	}
	if _, err := payloadOnce(content.Platform{Body: "hi!"}, nil, len(small)); !errors.As(err, new(*SizeError)) {
		t.Errorf("one byte over with no room for an ellipsis: err = %v, want a *SizeError", err)
	}
}
