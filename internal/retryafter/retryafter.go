// Package retryafter reads the Retry-After header both providers send.
package retryafter

import (
	"net/http"
	"strconv"
	"time"
)

// Parse reads a Retry-After value, seconds or an HTTP date, as a wait from
// now; zero when absent, malformed or past. A day is the most it returns, so
// that a bogus header cannot park a job for years.
func Parse(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, int64(24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, 24*time.Hour)
		}
	}
	return 0
}
