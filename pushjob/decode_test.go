package pushjob_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pushd/pushd/pushjob"
)

func TestDecodeRoundTrip(t *testing.T) {
	want := fullJob()
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pushjob.Decode(b)
	if err != nil {
		t.Fatalf("Decode(%s): %v", b, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Decode(Marshal(job)) =\n%+v\nwant\n%+v", got, want)
	}
}

func TestDecodeAccepts(t *testing.T) {
	for _, in := range []string{
		`{"message_id":"m1","conversation_id":"c1","recipients":["a"]}`,
		` {"message_id":"m1"} ` + "\n", // surrounding space is no trailing data
		`{}`,                           // structurally fine; Validate finds what is missing
		`{"message_id":null,"recipients":null,"push":null,"expires_at":null}`,
		`{"push":{"badge":null,"ios":{"badge":"Increment"},"android":{"badge":0}}}`,
		`{"push":{"data":{"k":{"x":[1,2,{"y":null}]},"s":"v"}}}`, // data takes any object
		`{"expires_at":"2030-01-02T03:04:05+08:00","timestamp":"2030-01-01T00:00:00.123Z"}`,
	} {
		if _, err := pushjob.Decode([]byte(in)); err != nil {
			t.Errorf("Decode(%s): %v", in, err)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		in   string
		want []pushjob.FieldError
	}{
		{``, []pushjob.FieldError{{Field: "", Rule: "empty body: want a JSON object"}}},
		{`   `, []pushjob.FieldError{{Field: "", Rule: "empty body: want a JSON object"}}},
		{`{`, []pushjob.FieldError{{Field: "", Rule: "malformed JSON: unexpected end of input"}}},
		{`{"message_id": }`, []pushjob.FieldError{{Field: "", Rule: "malformed JSON at byte 16: invalid character '}' looking for beginning of value"}}},
		{`{"a":1,}`, []pushjob.FieldError{{Field: "", Rule: "malformed JSON at byte 8: invalid character '}' looking for beginning of object key string"}}},
		{`{} {}`, []pushjob.FieldError{{Field: "", Rule: "malformed JSON: data after the job at byte 2"}}},
		{`{}x`, []pushjob.FieldError{{Field: "", Rule: "malformed JSON: data after the job at byte 2"}}},
		{`null`, []pushjob.FieldError{{Field: "", Rule: "want a JSON object"}}},
		{`[]`, []pushjob.FieldError{{Field: "", Rule: "want an object"}}},
		{`"job"`, []pushjob.FieldError{{Field: "", Rule: "want an object"}}},

		{`{"colour":"red"}`, []pushjob.FieldError{{Field: "colour", Rule: "unknown field"}}},
		{`{"push":{"ios":{"colour":"red"}}}`, []pushjob.FieldError{{Field: "push.ios.colour", Rule: "unknown field"}}},
		{`{"Message_ID":"m1"}`, []pushjob.FieldError{{Field: "Message_ID", Rule: "unknown field"}}},
		{`{"message_id":"a","message_id":"b"}`, []pushjob.FieldError{{Field: "message_id", Rule: "repeated key"}}},

		{`{"message_id":1}`, []pushjob.FieldError{{Field: "message_id", Rule: "want a string"}}},
		{`{"recipients":"bob"}`, []pushjob.FieldError{{Field: "recipients", Rule: "want an array"}}},
		{`{"recipients":["a",2,"c"]}`, []pushjob.FieldError{{Field: "recipients[1]", Rule: "want a string"}}},
		{`{"force":"yes"}`, []pushjob.FieldError{{Field: "force", Rule: "want true or false"}}},
		{`{"ttl_seconds":"60"}`, []pushjob.FieldError{{Field: "ttl_seconds", Rule: "want a whole number in range"}}},
		{`{"ttl_seconds":1.5}`, []pushjob.FieldError{{Field: "ttl_seconds", Rule: "want a whole number in range"}}},
		{`{"ttl_seconds":1e99}`, []pushjob.FieldError{{Field: "ttl_seconds", Rule: "want a whole number in range"}}},
		{`{"priority":3}`, []pushjob.FieldError{{Field: "priority", Rule: "want a string"}}},
		{`{"expires_at":"tomorrow"}`, []pushjob.FieldError{{Field: "expires_at", Rule: "want an RFC 3339 time, such as 2006-01-02T15:04:05Z"}}},
		{`{"push":[]}`, []pushjob.FieldError{{Field: "push", Rule: "want an object"}}},
		{`{"push":{"badge":"increment"}}`, []pushjob.FieldError{{Field: "push.badge", Rule: `want a whole number or "Increment"`}}},
		{`{"push":{"badge":1.5}}`, []pushjob.FieldError{{Field: "push.badge", Rule: `want a whole number or "Increment"`}}},
		{`{"push":{"android":{"badge":true}}}`, []pushjob.FieldError{{Field: "push.android.badge", Rule: `want a whole number or "Increment"`}}},
		{`{"push":{"data":["k"]}}`, []pushjob.FieldError{{Field: "push.data", Rule: "want an object"}}},
		{`{"push":{"ios":{"mutable_content":1}}}`, []pushjob.FieldError{{Field: "push.ios.mutable_content", Rule: "want true or false"}}},

		// Every problem at once, in document order.
		{`{"colour":1,"recipients":[1,"b"],"push":{"badge":"x","sound":2},"mentions":{}}`, []pushjob.FieldError{
			{Field: "colour", Rule: "unknown field"},
			{Field: "recipients[0]", Rule: "want a string"},
			{Field: "push.badge", Rule: `want a whole number or "Increment"`},
			{Field: "push.sound", Rule: "want a string"},
			{Field: "mentions", Rule: "want an array"},
		}},
	}
	for _, tt := range tests {
		job, err := pushjob.Decode([]byte(tt.in))
		var ve *pushjob.ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("Decode(%s) = %+v, %v; want a *ValidationError", tt.in, job, err)
			continue
		}
		if !slices.Equal(ve.Fields, tt.want) {
			t.Errorf("Decode(%s) errors =\n%q\nwant\n%q", tt.in, ve.Fields, tt.want)
		}
		if !reflect.DeepEqual(job, pushjob.Job{}) {
			t.Errorf("Decode(%s) returned a partial job %+v", tt.in, job)
		}
	}
}

// A list of wrong types reports ten and counts the rest.
func TestDecodeCapsListErrors(t *testing.T) {
	nums := make([]string, 12)
	for i := range nums {
		nums[i] = fmt.Sprint(i)
	}
	_, err := pushjob.Decode([]byte(`{"recipients":[` + strings.Join(nums, ",") + `]}`))
	var ve *pushjob.ValidationError
	if !errors.As(err, &ve) || len(ve.Fields) != 11 {
		t.Fatalf("Decode: %v; want 10 element errors and a summary", err)
	}
	if last := ve.Fields[10]; last != (pushjob.FieldError{Field: "recipients", Rule: "2 more invalid elements not listed"}) {
		t.Errorf("summary = %+v", last)
	}
}

// 10 001 recipients decode, and validation refuses them: the HTTP API
// does both.
func TestDecodeTooManyRecipients(t *testing.T) {
	ids := make([]string, pushjob.MaxRecipients+1)
	for i := range ids {
		ids[i] = fmt.Sprint("client-", i)
	}
	b, _ := json.Marshal(map[string]any{"message_id": "m1", "conversation_id": "c1", "recipients": ids})
	j, err := pushjob.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := fields(t, j.Validate()); !slices.Equal(got, []string{"recipients"}) {
		t.Errorf("Validate fields = %q, want [recipients]", got)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"message_id":"m1","conversation_id":"c1","recipients":["a"],"push":{"badge":"Increment"}}`))
	f.Add([]byte(`{"push":{"ios":{"colour":1}},"recipients":[1]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := pushjob.Decode(data)
		if err != nil {
			var ve *pushjob.ValidationError
			if !errors.As(err, &ve) || len(ve.Fields) == 0 {
				t.Fatalf("Decode error %v is not a non-empty *ValidationError", err)
			}
			return
		}
		// Whatever Decode accepts, encoding/json accepts too.
		var std pushjob.Job
		if err := json.Unmarshal(data, &std); err != nil {
			t.Fatalf("Decode accepted %q, json.Unmarshal: %v", data, err)
		}
		if !reflect.DeepEqual(j, std) {
			t.Fatalf("Decode = %+v, json.Unmarshal = %+v", j, std)
		}
	})
}
