package apns

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

const testToken = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"

func TestWithoutURL(t *testing.T) {
	for _, cause := range []error{context.DeadlineExceeded, context.Canceled, errors.New("EOF")} {
		err := &url.Error{Op: "Post", URL: "https://api.push.apple.com/3/device/" + testToken, Err: cause}
		got := withoutURL(Development, err)
		if msg := got.Error(); strings.Contains(msg, testToken) || strings.Contains(msg, "/3/device/") {
			t.Errorf("error %q shows the URL", msg)
		}
		if want := "post to development gateway: " + cause.Error(); got.Error() != want {
			t.Errorf("error %q, want %q", got, want)
		}
		if !errors.Is(got, cause) {
			t.Errorf("error %q is not %v", got, cause)
		}
	}
	// A *url.Error deeper in the chain goes too; other errors stay as
	// they are.
	wrapped := fmt.Errorf("apns2: %w", &url.Error{Op: "Post", URL: "https://x/3/device/" + testToken, Err: context.Canceled})
	if got := withoutURL(Production, wrapped); strings.Contains(got.Error(), testToken) || !errors.Is(got, context.Canceled) {
		t.Errorf("wrapped: %q", got)
	}
	plain := errors.New("no answer")
	if got := withoutURL(Production, plain); got != plain {
		t.Errorf("plain error became %q", got)
	}
}

func TestWithoutToken(t *testing.T) {
	err := fmt.Errorf("dial %s: %w", testToken, context.DeadlineExceeded)
	got := withoutToken(err, testToken)
	if strings.Contains(got.Error(), testToken) || !strings.Contains(got.Error(), testToken[:8]) {
		t.Errorf("error %q, want the token cut to its first digits", got)
	}
	if !errors.Is(got, context.DeadlineExceeded) {
		t.Errorf("error %q lost its cause", got)
	}
	clean := errors.New("connection reset")
	if got := withoutToken(clean, testToken); got != clean {
		t.Errorf("clean error became %q", got)
	}
}
