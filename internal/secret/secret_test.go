package secret_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/pushd/pushd/internal/secret"
)

const value = "hunter2-s3cret"

// holder nests secrets the ways a config does: a field, a pointer, a list,
// a map, a struct in a struct.
type holder struct {
	Password secret.Secret
	Empty    secret.Secret
	Ptr      *secret.Secret
	Tokens   []secret.Secret
	ByName   map[string]secret.Secret
	Inner    struct{ Key secret.Secret }
}

func newHolder() holder {
	s := secret.Secret(value)
	h := holder{Password: s, Ptr: &s, Tokens: []secret.Secret{s, s}, ByName: map[string]secret.Secret{"a": s}}
	h.Inner.Key = s
	return h
}

func TestRedacted(t *testing.T) {
	s := secret.Secret(value)
	h := newHolder()
	var jsonLog, textLog bytes.Buffer
	slog.New(slog.NewJSONHandler(&jsonLog, nil)).Info("m", "secret", s, "holder", h, "ptr", &h)
	slog.New(slog.NewTextHandler(&textLog, nil)).Info("m", "secret", s, "holder", h, "ptr", &h)
	j, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"%v": fmt.Sprintf("%v", s), "%s": fmt.Sprintf("%s", s), "%q": fmt.Sprintf("%q", s),
		"%x": fmt.Sprintf("%x", s), "%#v": fmt.Sprintf("%#v", s),
		"holder %v": fmt.Sprintf("%v", h), "holder %+v": fmt.Sprintf("%+v", h), "holder %#v": fmt.Sprintf("%#v", h),
		"pointer %+v": fmt.Sprintf("%+v", &h), "Println": fmt.Sprintln(s, h),
		"slog JSON": jsonLog.String(), "slog text": textLog.String(),
		"json": string(j), "yaml": string(y),
	}
	for name, out := range outputs {
		if strings.Contains(out, value) || strings.Contains(out, fmt.Sprintf("%x", value)) {
			t.Errorf("%s shows the secret: %s", name, out)
		}
		if !strings.Contains(out, "redacted") && !strings.Contains(out, fmt.Sprintf("%x", secret.Redacted)) {
			t.Errorf("%s does not say it redacted: %s", name, out)
		}
	}
	for name, want := range map[string]string{
		"%v":        "[redacted]",
		"%q":        `"[redacted]"`,
		"%#v":       `secret.Secret("[redacted]")`,
		"holder %v": "{[redacted]  ",
		"json":      `{"Password":"[redacted]","Empty":"","Ptr":"[redacted]","Tokens":["[redacted]","[redacted]"],"ByName":{"a":"[redacted]"},"Inner":{"Key":"[redacted]"}}`,
		"slog JSON": `"secret":"[redacted]"`,
		"slog text": `secret=[redacted]`,
	} {
		if !strings.Contains(outputs[name], want) {
			t.Errorf("%s = %s, want %s in it", name, outputs[name], want)
		}
	}
}

// An empty secret shows as empty: a missing password must not read as set.
func TestEmpty(t *testing.T) {
	var s secret.Secret
	j, _ := json.Marshal(s)
	for name, got := range map[string]string{
		"String": s.String(), "%v": fmt.Sprintf("%v", s), "%#v": fmt.Sprintf("%#v", s),
		"LogValue": s.LogValue().String(), "json": string(j),
	} {
		if want := map[string]string{"%#v": `secret.Secret("")`, "json": `""`}[name]; got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}

// Decoding fills a secret like any string; Reveal gives the value back.
func TestDecodeReveal(t *testing.T) {
	var h struct{ Password secret.Secret }
	if err := json.Unmarshal([]byte(`{"Password":"`+value+`"}`), &h); err != nil {
		t.Fatal(err)
	}
	if h.Password.Reveal() != value {
		t.Errorf("JSON: Reveal = %q, want %q", h.Password.Reveal(), value)
	}
	h.Password = ""
	if err := yaml.Unmarshal([]byte("password: "+value), &h); err != nil {
		t.Fatal(err)
	}
	if h.Password.Reveal() != value {
		t.Errorf("YAML: Reveal = %q, want %q", h.Password.Reveal(), value)
	}
}
