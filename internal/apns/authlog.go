package apns

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// authLogInterval is how often one app's credential errors are logged.
const authLogInterval = time.Minute

// authLog logs auth_error answers (Apple refused the credentials, not the
// token) at most once per app and authLogInterval: a revoked key fails
// every push of the app, and one line a minute says so as well as a
// million. Each line counts the answers left unlogged since the previous
// one. It logs Apple's status and reason, never the provider token, the
// key or the device token.
type authLog struct {
	log *slog.Logger
	now func() time.Time

	mu   sync.Mutex
	apps map[string]*authLogState
}

type authLogState struct {
	last       time.Time // when the last line was written
	suppressed int       // answers since then not logged
}

func newAuthLog(l *slog.Logger, now func() time.Time) *authLog {
	if l == nil {
		l = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if now == nil {
		now = time.Now
	}
	return &authLog{log: l, now: now, apps: make(map[string]*authLogState)}
}

// note counts one auth_error answer for appID and logs it if the app's
// last line is a minute old.
func (a *authLog) note(appID string, res Result) {
	now := a.now()
	a.mu.Lock()
	st := a.apps[appID]
	if st == nil {
		st = &authLogState{}
		a.apps[appID] = st
	} else if now.Sub(st.last) < authLogInterval {
		st.suppressed++
		a.mu.Unlock()
		return
	}
	suppressed := st.suppressed
	st.last, st.suppressed = now, 0
	a.mu.Unlock()
	a.log.LogAttrs(context.Background(), slog.LevelError,
		"apns: Apple refused the app's credentials; pushes fail until an operator fixes them",
		slog.String("app", appID),
		slog.String("env", res.Env),
		slog.Int("status", res.Status),
		slog.String("reason", res.Reason),
		slog.Int("suppressed", suppressed),
	)
}
