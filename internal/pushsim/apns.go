package pushsim

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// APNs limits, from Apple's "Sending notification requests to APNs".
const (
	apnsMaxPayload     = 4096
	apnsMaxVoIPPayload = 5120
	apnsMaxCollapseID  = 64
	// providerTokenLifetime is how long Apple honours a provider token.
	providerTokenLifetime = 3600
)

// apnsPushTypes are the apns-push-type values Apple documents.
var apnsPushTypes = map[string]bool{
	"alert": true, "background": true, "location": true, "voip": true,
	"complication": true, "fileprovider": true, "mdm": true,
	"liveactivity": true, "pushtotalk": true, "widgets": true, "controls": true,
}

// ReasonNotJSONObject is the reason for a body that is not a JSON object.
// Apple documents no reason for it; this one says what is wrong.
const ReasonNotJSONObject = "PayloadNotJSONObject"

func (s *Sim) apnsHandler(env Env) http.Handler {
	listener := ListenerAPNsProduction
	if env == Development {
		listener = ListenerAPNsDevelopment
	}
	g := s.rec.gauge(listener)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The gauge spans the whole answer, injected latency included, so
		// that a latency fault holds requests in flight for a test to see.
		g.enter()
		defer g.leave()
		s.serveAPNs(env, listener, w, r)
	})
}

// apnsReply writes Apple's error shape and counts it.
func (s *Sim) apnsReply(w http.ResponseWriter, listener string, status int, reason string) {
	s.rec.count(listener, status, reason)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, `{"reason":"`+reason+`"}`)
}

func (s *Sim) serveAPNs(env Env, listener string, w http.ResponseWriter, r *http.Request) {
	now := s.cfg.Now()
	token, ok := strings.CutPrefix(r.URL.Path, "/3/device/")
	if !ok || token == "" || strings.Contains(token, "/") {
		s.apnsReply(w, listener, http.StatusNotFound, "BadPath")
		return
	}
	if r.Method != http.MethodPost {
		s.apnsReply(w, listener, http.StatusMethodNotAllowed, "MethodNotAllowed")
		return
	}
	body, tooLarge, err := readBody(r.Body, r.ContentLength, apnsMaxVoIPPayload)
	if err != nil {
		// The client went away mid-body; there is nobody to answer.
		return
	}

	h := r.Header
	topic := h.Get("apns-topic")
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		// crypto/tls parses the certificate afresh on every handshake, so
		// there is nothing to cache it by; reading the extensions is cheap.
		auth := parseCertAuth(r.TLS.PeerCertificates[0])
		if !auth.envs[env] {
			s.apnsReply(w, listener, http.StatusForbidden, "BadCertificateEnvironment")
			return
		}
		switch {
		case topic == "" && len(auth.topics) == 1:
			// Apple falls back to the certificate's only topic.
			topic = auth.topics[0]
		case topic == "":
			s.apnsReply(w, listener, http.StatusBadRequest, "MissingTopic")
			return
		case !auth.allows(topic):
			s.apnsReply(w, listener, http.StatusBadRequest, "TopicDisallowed")
			return
		}
	} else {
		if status, reason := s.checkProviderToken(h.Get("authorization"), now); status != 0 {
			s.apnsReply(w, listener, status, reason)
			return
		}
		if topic == "" {
			s.apnsReply(w, listener, http.StatusBadRequest, "MissingTopic")
			return
		}
	}

	pushType := h.Get("apns-push-type")
	if pushType != "" && !apnsPushTypes[pushType] {
		s.apnsReply(w, listener, http.StatusBadRequest, "InvalidPushType")
		return
	}
	if p := h.Get("apns-priority"); p != "" && p != "10" && p != "5" && p != "1" {
		s.apnsReply(w, listener, http.StatusBadRequest, "BadPriority")
		return
	}
	id := h.Get("apns-id")
	if id == "" {
		id = newUUID()
	} else if !isUUID(id) {
		s.apnsReply(w, listener, http.StatusBadRequest, "BadMessageId")
		return
	}
	if len(h.Get("apns-collapse-id")) > apnsMaxCollapseID {
		s.apnsReply(w, listener, http.StatusBadRequest, "BadCollapseId")
		return
	}
	if e := h.Get("apns-expiration"); e != "" {
		if n, err := strconv.ParseInt(e, 10, 64); err != nil || n < 0 {
			s.apnsReply(w, listener, http.StatusBadRequest, "BadExpirationDate")
			return
		}
	}

	limit := apnsMaxPayload
	if pushType == "voip" {
		limit = apnsMaxVoIPPayload
	}
	switch {
	case len(body) == 0 && !tooLarge:
		s.apnsReply(w, listener, http.StatusBadRequest, "PayloadEmpty")
		return
	case tooLarge || len(body) > limit:
		s.apnsReply(w, listener, http.StatusRequestEntityTooLarge, "PayloadTooLarge")
		return
	case !isJSONObject(body):
		s.apnsReply(w, listener, http.StatusBadRequest, ReasonNotJSONObject)
		return
	}

	// Faults strike requests that would otherwise reach a device, so a
	// rule's hit budget is spent only on pushes a test meant to disturb.
	if v := s.faults.judge(now, listener, token); v.delay > 0 || v.fail != nil {
		if v.delay > 0 {
			select {
			case <-time.After(v.delay):
			case <-r.Context().Done():
				return
			}
		}
		if v.fail != nil {
			s.apnsFault(w, r, listener, v.fail)
			return
		}
	}
	if status, reason := s.apnsTokenFate(env, token, topic); status != 0 {
		if status == http.StatusGone {
			s.apnsGone(w, listener, reason)
			return
		}
		s.apnsReply(w, listener, status, reason)
		return
	}

	kept := make(map[string]string, 6)
	for _, k := range [...]string{"apns-topic", "apns-push-type", "apns-priority", "apns-id", "apns-collapse-id", "apns-expiration"} {
		if v := h.Get(k); v != "" {
			kept[k] = v
		}
	}
	kept["apns-topic"] = topic
	s.rec.receive(listener, token, now, kept, body)
	s.rec.count(listener, http.StatusOK, "")
	rh := w.Header()
	rh["Apns-Id"] = []string{id}
	if env == Development {
		// The sandbox also returns an id to look the push up in Apple's
		// delivery log.
		rh["Apns-Unique-Id"] = []string{newUUID()}
	}
	w.WriteHeader(http.StatusOK)
}

// apnsGone answers 410 with the time Apple says the token stopped being valid.
func (s *Sim) apnsGone(w http.ResponseWriter, listener, reason string) {
	s.rec.count(listener, http.StatusGone, reason)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusGone)
	io.WriteString(w, `{"reason":"`+reason+`","timestamp":`+strconv.FormatInt(s.unregisteredAt(), 10)+`}`)
}

// apnsTokenFate decides what APNs says about token on env's gateway for
// topic; status 0 means it accepts it.
func (s *Sim) apnsTokenFate(env Env, token, topic string) (status int, reason string) {
	if !WellFormedAPNs(token) {
		return http.StatusBadRequest, "BadDeviceToken"
	}
	info, minted := s.minter.ParseAPNs(token)
	fate := s.cfg.DefaultFate
	if minted {
		fate = info.Fate
		if fate != FateMalformed {
			// A token belongs to one environment and one topic: the
			// other gateway does not know it at all.
			if info.Env != env {
				return http.StatusBadRequest, "BadDeviceToken"
			}
			if info.Scope != ScopeHash(topic) {
				return http.StatusBadRequest, "DeviceTokenNotForTopic"
			}
		}
	}
	switch fate {
	case FateMalformed:
		return http.StatusBadRequest, "BadDeviceToken"
	case FateUnregistered:
		return http.StatusGone, "Unregistered"
	}
	return 0, ""
}

// unregisteredAt is the time APNs reports a token stopped being valid, in
// milliseconds: a day before the simulator started.
func (s *Sim) unregisteredAt() int64 { return s.started.Add(-24 * time.Hour).UnixMilli() }

func (s *Sim) apnsFault(w http.ResponseWriter, r *http.Request, listener string, f *faultRule) {
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
	}
	switch f.Kind {
	case FaultTooManyRequests:
		s.apnsReply(w, listener, http.StatusTooManyRequests, "TooManyRequests")
	case FaultInternal:
		s.apnsReply(w, listener, http.StatusInternalServerError, "InternalServerError")
	case FaultUnavailable:
		s.apnsReply(w, listener, http.StatusServiceUnavailable, "ServiceUnavailable")
	case FaultGoAway:
		// "Connection: close" makes Go's HTTP/2 server send GOAWAY and
		// close the connection once its streams finish.
		w.Header().Set("Connection", "close")
		s.apnsReply(w, listener, http.StatusServiceUnavailable, "Shutdown")
	case FaultDrop:
		s.dropConn(r, listener)
	case FaultReason:
		if f.Status == http.StatusGone {
			s.apnsGone(w, listener, f.Reason)
			return
		}
		s.apnsReply(w, listener, f.Status, f.Reason)
	}
}

// dropConn closes the request's TCP connection without an answer.
func (s *Sim) dropConn(r *http.Request, listener string) {
	s.rec.count(listener, 0, "ConnectionDropped")
	if c, ok := r.Context().Value(connKey{}).(net.Conn); ok {
		c.Close()
	}
	panic(http.ErrAbortHandler)
}

// checkProviderToken verifies an APNs provider token (JWT) as Apple does:
// status 0 means it is good.
func (s *Sim) checkProviderToken(authz string, now time.Time) (status int, reason string) {
	if authz == "" {
		return http.StatusForbidden, "MissingProviderToken"
	}
	bearer := authz
	if len(authz) > 7 && strings.EqualFold(authz[:7], "bearer ") {
		bearer = authz[7:]
	} else {
		return http.StatusForbidden, "MissingProviderToken"
	}
	var e *jwtEntry
	if v, ok := s.jwtCache.Load(bearer); ok {
		e = v.(*jwtEntry)
		// A key removed or replaced since takes its tokens with it.
		if cur, ok := s.apnsKeys.Load(e.key.id); !ok || cur.(*apnsKey) != e.key {
			s.jwtCache.Delete(bearer)
			return http.StatusForbidden, "InvalidProviderToken"
		}
	} else {
		e = s.verifyProviderToken(bearer, now)
		if e == nil {
			return http.StatusForbidden, "InvalidProviderToken"
		}
		// Verifying ES256 costs more than the rest of a push, so each
		// distinct token is verified once; the cache is dropped when it
		// grows past what any honest client makes.
		if s.jwtCached.Add(1) > 10000 {
			s.jwtCache.Clear()
			s.jwtCached.Store(0)
		}
		s.jwtCache.Store(bearer, e)
	}
	if now.Unix()-e.iat > providerTokenLifetime {
		return http.StatusForbidden, "ExpiredProviderToken"
	}
	if interval := int64(s.cfg.ProviderTokenInterval / time.Second); interval > 0 {
		for {
			cur := e.key.iat.Load()
			if e.iat <= cur {
				break
			}
			if cur != 0 && e.iat-cur < interval {
				return http.StatusTooManyRequests, "TooManyProviderTokenUpdates"
			}
			if e.key.iat.CompareAndSwap(cur, e.iat) {
				break
			}
		}
	}
	return 0, ""
}

type jwtEntry struct {
	key *apnsKey
	iat int64
}

func (s *Sim) verifyProviderToken(bearer string, now time.Time) *jwtEntry {
	var head struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	var claims struct {
		Iss string `json:"iss"`
		Iat int64  `json:"iat"`
	}
	signed, sig, err := jwtParts(bearer, &head, &claims)
	if err != nil || head.Alg != "ES256" {
		return nil
	}
	v, ok := s.apnsKeys.Load(head.Kid)
	if !ok {
		return nil
	}
	key := v.(*apnsKey)
	if claims.Iss != key.teamID || claims.Iat == 0 || claims.Iat > now.Unix()+60 {
		return nil
	}
	if !verifyES256(key.pub, signed, sig) {
		return nil
	}
	return &jwtEntry{key: key, iat: claims.Iat}
}

// readBody reads at most limit bytes; tooLarge reports a longer body.
// The body is kept as a receipt, so it is read into a buffer of the
// declared length (plus one byte to see EOF) rather than a larger one.
func readBody(r io.Reader, declared int64, limit int) (body []byte, tooLarge bool, err error) {
	size := 512
	if declared >= 0 && declared <= int64(limit) {
		size = int(declared) + 1
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > limit {
			// The rest is not read: the server resets the stream once
			// the handler returns, so a client cannot keep it busy.
			return nil, true, nil
		}
		if err == io.EOF {
			return buf, false, nil
		}
		if err != nil {
			return nil, false, err
		}
	}
}

func isJSONObject(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return json.Valid(b)
		}
		return false
	}
	return false
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}
