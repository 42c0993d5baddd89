package installations

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

const apnsToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func valid() Installation {
	return Installation{ID: "ios-1", AppID: "default", ClientID: "alice", Provider: APNs, Token: apnsToken,
		APNsEnv: Development, APNsTopic: "com.example.chat", Locale: "zh-Hans-CN", Timezone: "Asia/Shanghai"}
}

func fields(err error) []string {
	var fe *FieldErrors
	if !errors.As(err, &fe) {
		return nil
	}
	var out []string
	for _, f := range fe.Fields {
		out = append(out, f.Field)
	}
	return out
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		edit   func(*Installation)
		fields []string
	}{
		{"valid apns", func(*Installation) {}, nil},
		{"upper-case apns token", func(in *Installation) { in.Token = strings.ToUpper(apnsToken) }, nil},
		{"apns 200 hex", func(in *Installation) { in.Token = strings.Repeat("ab", 100) }, nil},
		{"apns without env", func(in *Installation) { in.APNsEnv = "" }, nil},
		{"valid fcm", func(in *Installation) {
			*in = Installation{ID: "a:b.c_d-e", AppID: "default", ClientID: "bob", Provider: FCM, Token: "fGx1:APA91b-_x"}
		}, nil},
		{"fcm 4096", func(in *Installation) {
			in.Provider, in.APNsEnv, in.APNsTopic, in.Token = FCM, "", "", strings.Repeat("x", 4096)
		}, nil},
		{"apns token too short", func(in *Installation) { in.Token = apnsToken[:62] }, []string{"token"}},
		{"apns token odd", func(in *Installation) { in.Token = apnsToken + "a" }, []string{"token"}},
		{"apns token too long", func(in *Installation) { in.Token = strings.Repeat("ab", 101) }, []string{"token"}},
		{"apns token not hex", func(in *Installation) { in.Token = strings.Repeat("zz", 32) }, []string{"token"}},
		{"fcm token space", func(in *Installation) { in.Provider, in.APNsEnv, in.APNsTopic, in.Token = FCM, "", "", "a b" }, []string{"token"}},
		{"fcm token too long", func(in *Installation) {
			in.Provider, in.APNsEnv, in.APNsTopic, in.Token = FCM, "", "", strings.Repeat("x", 4097)
		}, []string{"token"}},
		{"fcm token non-ascii", func(in *Installation) { in.Provider, in.APNsEnv, in.APNsTopic, in.Token = FCM, "", "", "tökén" }, []string{"token"}},
		{"fcm with apns fields", func(in *Installation) { in.Provider, in.Token = FCM, "tok" }, []string{"apns_env", "apns_topic"}},
		{"unknown provider", func(in *Installation) { in.Provider = "wns"; in.APNsEnv, in.APNsTopic = "", "" }, []string{"provider"}},
		{"bad env", func(in *Installation) { in.APNsEnv = "sandbox" }, []string{"apns_env"}},
		{"apns ios", func(in *Installation) { in.Platform = PlatformIOS }, nil},
		{"apns android", func(in *Installation) { in.Platform = PlatformAndroid }, []string{"platform"}},
		{"apns web", func(in *Installation) { in.Platform = PlatformWeb }, []string{"platform"}},
		{"fcm android", func(in *Installation) {
			in.Provider, in.APNsEnv, in.APNsTopic, in.Token, in.Platform = FCM, "", "", "tok", PlatformAndroid
		}, nil},
		{"fcm ios", func(in *Installation) {
			in.Provider, in.APNsEnv, in.APNsTopic, in.Token, in.Platform = FCM, "", "", "tok", PlatformIOS
		}, nil},
		{"fcm web", func(in *Installation) {
			in.Provider, in.APNsEnv, in.APNsTopic, in.Token, in.Platform = FCM, "", "", "tok", PlatformWeb
		}, nil},
		{"fcm unknown platform", func(in *Installation) {
			in.Provider, in.APNsEnv, in.APNsTopic, in.Token, in.Platform = FCM, "", "", "tok", "windows"
		}, []string{"platform"}},
		{"platform is case-sensitive", func(in *Installation) { in.Platform = "iOS" }, []string{"platform"}},
		{"unknown provider, known platform", func(in *Installation) {
			in.Provider, in.APNsEnv, in.APNsTopic, in.Platform = "wns", "", "", PlatformWeb
		}, []string{"provider"}},
		{"id chars", func(in *Installation) { in.ID = "a/b" }, []string{"installation_id"}},
		{"id too long", func(in *Installation) { in.ID = strings.Repeat("a", 129) }, []string{"installation_id"}},
		{"client too long", func(in *Installation) { in.ClientID = strings.Repeat("a", 257) }, []string{"client_id"}},
		{"client invalid utf-8", func(in *Installation) { in.ClientID = "a\xffb" }, []string{"client_id"}},
		{"client control", func(in *Installation) { in.ClientID = "a\x00b" }, []string{"client_id"}},
		{"locale", func(in *Installation) { in.Locale = "en US" }, []string{"locale"}},
		{"timezone", func(in *Installation) { in.Timezone = "Mars/Olympus_Mons" }, []string{"timezone"}},
		{"timezone local", func(in *Installation) { in.Timezone = "Local" }, []string{"timezone"}},
		{"everything at once", func(in *Installation) {
			*in = Installation{Provider: APNs, Token: "xyz", APNsEnv: "staging", Timezone: "Nowhere/Else"}
		}, []string{"installation_id", "app_id", "client_id", "token", "apns_env", "timezone"}},
		{"nothing at all", func(in *Installation) { *in = Installation{} }, []string{"installation_id", "app_id", "client_id", "provider", "token"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := valid()
			tc.edit(&in)
			err := in.Validate()
			if got := fields(err); !slices.Equal(got, tc.fields) {
				t.Fatalf("Validate() fields = %v, want %v (err %v)", got, tc.fields, err)
			}
			if tc.fields == nil && err != nil {
				t.Fatalf("Validate() = %v", err)
			}
		})
	}
}

func TestFieldErrorsJSON(t *testing.T) {
	err := Installation{Provider: FCM, Token: "ok"}.Validate()
	var fe *FieldErrors
	if !errors.As(err, &fe) {
		t.Fatalf("Validate() = %T, want *FieldErrors", err)
	}
	b, _ := json.Marshal(fe)
	want := `{"fields":[{"field":"installation_id","rule":"required"},{"field":"app_id","rule":"required"},{"field":"client_id","rule":"required"}]}`
	if string(b) != want {
		t.Errorf("JSON = %s\nwant   %s", b, want)
	}
	if msg := err.Error(); msg != "invalid installation: installation_id: required; app_id: required; client_id: required" {
		t.Errorf("Error() = %q", msg)
	}
}

func TestPlatformRules(t *testing.T) {
	in := valid()
	in.Platform = PlatformAndroid
	const want = `invalid installation: platform: "ios" or empty for provider apns`
	if err := in.Validate(); err == nil || err.Error() != want {
		t.Errorf("apns+android: Validate() = %v, want %q", err, want)
	}
	in.Provider, in.APNsEnv, in.APNsTopic, in.Platform = FCM, "", "", "tv"
	const wantFCM = `invalid installation: platform: one of "ios", "android", "web", or empty`
	if err := in.Validate(); err == nil || err.Error() != wantFCM {
		t.Errorf("fcm+tv: Validate() = %v, want %q", err, wantFCM)
	}
	for p, want := range map[Provider]Platform{APNs: PlatformIOS, FCM: PlatformAndroid, "wns": ""} {
		if got := normalize(Installation{Provider: p}).Platform; got != want {
			t.Errorf("normalize(%s).Platform = %q, want %q", p, got, want)
		}
	}
	if got := normalize(Installation{Provider: FCM, Platform: PlatformWeb}).Platform; got != PlatformWeb {
		t.Errorf("normalize kept fcm web as %q", got)
	}
}

func TestClean(t *testing.T) {
	if got := clean("a\x00b\xff", 10); got != "ab\uFFFD" {
		t.Errorf("clean = %q", got)
	}
	if got := clean("héllo", 2); got != "h" {
		t.Errorf("clean cut mid-rune: %q", got)
	}
}
