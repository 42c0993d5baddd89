package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestHTTPServerTimeouts(t *testing.T) {
	srv := newHTTPServer("127.0.0.1:0", http.NotFoundHandler())
	if srv.ReadHeaderTimeout != 10*time.Second || srv.ReadTimeout != 30*time.Second ||
		srv.WriteTimeout != 30*time.Second || srv.IdleTimeout != 2*time.Minute {
		t.Errorf("timeouts: read header %v, read %v, write %v, idle %v; want 10s, 30s, 30s, 2m",
			srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout)
	}
}

// The Redis ping takes no context; /readyz must not wait past its own.
func TestPingWithin(t *testing.T) {
	ctx := context.Background()
	if err := pingWithin(ctx, func() error { return nil }); err != nil {
		t.Errorf("ping ok: %v", err)
	}
	refused := errors.New("connection refused")
	if err := pingWithin(ctx, func() error { return refused }); err != refused {
		t.Errorf("ping failed: %v, want %v", err, refused)
	}

	release := make(chan struct{})
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := pingWithin(ctx, func() error { <-release; return nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hung ping: %v, want the deadline", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("hung ping held the check %v", d)
	}
}

// The profiler answers on its own mux: its index and a profile.
func TestPprofMux(t *testing.T) {
	srv := httptest.NewServer(pprofMux())
	defer srv.Close()
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1", "/debug/pprof/cmdline"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
	}
}
