package pushsim

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// FCM limits, from the HTTP v1 reference and "About FCM messages".
const (
	// fcmMaxPayload bounds what FCM counts as a message's payload: the
	// keys and values of data and notification, common and
	// Android-specific, as decoded (see sendRequest.size).
	fcmMaxPayload = 4096
	// fcmMaxTopicPayload is the payload limit of messages sent to a topic
	// or a condition.
	fcmMaxTopicPayload = 2048
	// fcmMaxBody bounds the request body read; anything longer is far
	// past fcmMaxPayload whatever it holds.
	fcmMaxBody = 1 << 20
	// fcmMaxTTLSeconds is the longest android.ttl FCM keeps a message:
	// four weeks.
	fcmMaxTTLSeconds = 28 * 24 * 3600
	// fcmMaxConditionTopics is how many topics a condition may name.
	fcmMaxConditionTopics = 5
	// fcmMaxConditionLen bounds a condition's length. The longest useful
	// condition, five 900-character topic names with their quotes,
	// operators and parentheses, is under 5000 bytes; the cap leaves room
	// for generous spacing and keeps the parser's work small whatever a
	// client sends.
	fcmMaxConditionLen = 16 << 10
	// fcmMaxConditionDepth bounds the nesting of parentheses and '!' in a
	// condition, and so the parser's recursion.
	fcmMaxConditionDepth = 32
)

// Type URLs of the error details Google attaches to a google.rpc.Status.
const (
	typeFcmError   = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
	typeBadRequest = "type.googleapis.com/google.rpc.BadRequest"
	typeErrorInfo  = "type.googleapis.com/google.rpc.ErrorInfo"
)

// Messages Google's front end uses for authentication failures.
const (
	msgCredentialsMissing = "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
	msgCredentialsInvalid = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
	msgScopesInsufficient = "Request had insufficient authentication scopes."
)

// fcmHandler serves the FCM HTTP v1 API and the OAuth2 token endpoint.
func (s *Sim) fcmHandler() http.Handler {
	g := s.rec.gauge(ListenerFCM)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			// Token requests stay out of the gauge: it measures how many
			// sends a client keeps in flight.
			s.serveToken(w, r)
			return
		}
		// The gauge spans the whole answer, injected latency included, so
		// that a latency fault holds requests in flight for a test to see.
		g.enter()
		defer g.leave()
		s.serveFCM(w, r)
	})
}

// rpcStatus is Google's JSON error body: a google.rpc.Status under "error".
type rpcStatus struct {
	Error rpcError `json:"error"`
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Status  string `json:"status"`
	Details []any  `json:"details,omitempty"`
}

type fcmErrorDetail struct {
	Type      string `json:"@type"`
	ErrorCode string `json:"errorCode"`
}

type badRequestDetail struct {
	Type            string           `json:"@type"`
	FieldViolations []fieldViolation `json:"fieldViolations"`
}

type fieldViolation struct {
	Field       string `json:"field,omitempty"`
	Description string `json:"description"`
}

type errorInfoDetail struct {
	Type     string            `json:"@type"`
	Reason   string            `json:"reason"`
	Domain   string            `json:"domain"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

func fcmErrorCode(code string) fcmErrorDetail { return fcmErrorDetail{typeFcmError, code} }

// fcmReply writes a google.rpc.Status and counts it under the FcmError code
// when there is one, else under the status.
func (s *Sim) fcmReply(w http.ResponseWriter, code int, status, message string, details ...any) {
	reason := status
	for _, d := range details {
		if fe, ok := d.(fcmErrorDetail); ok {
			reason = fe.ErrorCode
		}
	}
	s.rec.count(ListenerFCM, code, reason)
	// Google indents its error bodies; clients never care, people reading
	// a capture do.
	b, err := json.MarshalIndent(rpcStatus{rpcError{code, message, status, details}}, "", "  ")
	if err != nil {
		panic(err) // the body holds only strings, numbers and maps of strings
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// fcmInvalid answers 400 INVALID_ARGUMENT for a field, with both details
// the Admin SDKs look at.
func (s *Sim) fcmInvalid(w http.ResponseWriter, fe *fieldError) {
	s.fcmReply(w, http.StatusBadRequest, "INVALID_ARGUMENT", fe.desc,
		badRequestDetail{typeBadRequest, []fieldViolation{{fe.field, fe.desc}}},
		fcmErrorCode("INVALID_ARGUMENT"))
}

// serveFCM answers everything on the FCM listener but the token endpoint.
func (s *Sim) serveFCM(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	project, ok := fcmSendPath(path)
	if !ok {
		s.fcmNotFound(w, path)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.fcmReply(w, http.StatusMethodNotAllowed, "UNIMPLEMENTED",
			"Method "+r.Method+" is not allowed on "+path+"; messages:send takes POST.")
		return
	}
	now := s.cfg.Now()
	if !s.fcmAuthorize(w, r.Header.Get("Authorization"), project, now) {
		return
	}

	body, tooLarge, err := readBody(r.Body, r.ContentLength, fcmMaxBody)
	if err != nil {
		// The client went away mid-body; there is nobody to answer.
		return
	}
	if tooLarge {
		s.fcmInvalid(w, &fieldError{"message", "Message is too big: the request body is over " + strconv.Itoa(fcmMaxBody) + " bytes."})
		return
	}
	req, fe := parseSendRequest(body)
	if fe != nil {
		s.fcmInvalid(w, fe)
		return
	}

	// Faults are judged after the body is parsed, because a rule may name
	// the registration token, and after validation, so that a malformed
	// message is refused the same way whatever faults are active (and
	// does not spend a rule's hit budget).
	if v := s.faults.judge(now, ListenerFCM, req.token); v.delay > 0 || v.fail != nil {
		if v.delay > 0 {
			t := time.NewTimer(v.delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		if v.fail != nil {
			s.fcmFault(w, r, v.fail, project)
			return
		}
	}

	key := req.token
	switch req.target {
	case "token":
		if !s.fcmTokenAccepted(w, project, req.token) {
			return
		}
	case "topic":
		key = "topic:" + strings.TrimPrefix(req.topic, "/topics/")
	case "condition":
		key = "condition:" + req.condition
	}

	var name string
	if req.validateOnly {
		// FCM's dry run answers with a fixed id: nothing was sent.
		name = "projects/" + project + "/messages/fake_message_id"
	} else {
		name = fcmMessageName(project, now)
		s.rec.receive(ListenerFCM, key, now, nil, req.message)
	}
	s.rec.count(ListenerFCM, http.StatusOK, "")
	out := make([]byte, 0, len(name)+16)
	out = append(out, "{\n  \"name\": \""...)
	out = append(out, name...)
	out = append(out, "\"\n}\n"...)
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(http.StatusOK)
	w.Write(out)
}

// fcmSendPath extracts the project from /v1/projects/{project}/messages:send.
func fcmSendPath(path string) (project string, ok bool) {
	rest, ok := strings.CutPrefix(path, "/v1/projects/")
	if !ok {
		return "", false
	}
	project, ok = strings.CutSuffix(rest, "/messages:send")
	if !ok || !validProjectID(project) {
		return "", false
	}
	return project, true
}

// validProjectID accepts project ids and numbers loosely (Google's ids are 6
// to 30 lower-case letters, digits and hyphens, with "domain:" in front for
// some old ones), so tests may use short names, while keeping out anything
// that would need escaping in a message name.
func validProjectID(p string) bool {
	if p == "" || len(p) > 100 {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

func (s *Sim) fcmNotFound(w http.ResponseWriter, path string) {
	msg := "The requested URL " + path + " was not found on this server."
	switch {
	case path == "/batch" || strings.HasPrefix(path, "/batch/"):
		msg = "The FCM batch send API (" + path + ") was shut down by Google in 2024. Send each message with POST /v1/projects/{project}/messages:send; the Admin SDK's SendEach does so concurrently."
	case path == "/fcm/send" || strings.HasPrefix(path, "/fcm/"):
		msg = "The legacy FCM HTTP API (" + path + ") was shut down by Google in 2024. Use the HTTP v1 API: POST /v1/projects/{project}/messages:send."
	}
	s.fcmReply(w, http.StatusNotFound, "NOT_FOUND", msg)
}

// fcmAuthorize checks the bearer token against the grants the token
// endpoint issued, answering for itself when it refuses. It is a map lookup:
// the assertion's signature was checked once, when the token was issued.
func (s *Sim) fcmAuthorize(w http.ResponseWriter, authz, project string, now time.Time) bool {
	const realm = `Bearer realm="https://accounts.google.com/"`
	info := func(reason string) errorInfoDetail {
		return errorInfoDetail{typeErrorInfo, reason, "googleapis.com", map[string]string{
			"service": "fcm.googleapis.com",
			"method":  "google.firebase.fcm.v1.FcmService.SendMessage",
		}}
	}
	if authz == "" {
		w.Header().Set("WWW-Authenticate", realm)
		s.fcmReply(w, http.StatusUnauthorized, "UNAUTHENTICATED", msgCredentialsMissing, info("CREDENTIALS_MISSING"))
		return false
	}
	var g *grant
	if len(authz) > 7 && strings.EqualFold(authz[:7], "bearer ") {
		if v, ok := s.grants.Load(authz[7:]); ok {
			g = v.(*grant)
		}
	}
	if g == nil || !now.Before(g.expires) {
		reason := "ACCESS_TOKEN_TYPE_UNSUPPORTED"
		if g != nil {
			reason = "ACCESS_TOKEN_EXPIRED"
		}
		w.Header().Set("WWW-Authenticate", realm+`, error="invalid_token"`)
		s.fcmReply(w, http.StatusUnauthorized, "UNAUTHENTICATED", msgCredentialsInvalid, info(reason))
		return false
	}
	if !g.messaging {
		w.Header().Set("WWW-Authenticate", realm+`, error="insufficient_scope", scope="`+ScopeFirebaseMessaging+` `+ScopeCloudPlatform+`"`)
		s.fcmReply(w, http.StatusForbidden, "PERMISSION_DENIED", msgScopesInsufficient, info("ACCESS_TOKEN_SCOPE_INSUFFICIENT"))
		return false
	}
	if g.project != project {
		// Service accounts in the simulator hold a role on their own
		// project only.
		s.fcmReply(w, http.StatusForbidden, "PERMISSION_DENIED",
			"Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/"+project+"' (or it may not exist).",
			errorInfoDetail{typeErrorInfo, "IAM_PERMISSION_DENIED", "cloudresourcemanager.googleapis.com", map[string]string{
				"permission": "cloudmessaging.messages.create",
				"resource":   "projects/" + project,
			}})
		return false
	}
	return true
}

// fcmTokenAccepted decides what FCM says about a registration token sent to
// project, answering for itself when it refuses the token.
func (s *Sim) fcmTokenAccepted(w http.ResponseWriter, project, token string) bool {
	fate := s.cfg.DefaultFate
	if !WellFormedFCM(token) {
		fate = FateMalformed
	} else if info, minted := s.minter.ParseFCM(token); minted {
		fate = info.Fate
		if fate != FateMalformed && info.Scope != ScopeHash(project) {
			s.fcmReply(w, http.StatusForbidden, "PERMISSION_DENIED", "SenderId mismatch", fcmErrorCode("SENDER_ID_MISMATCH"))
			return false
		}
	}
	switch fate {
	case FateMalformed:
		s.fcmReply(w, http.StatusBadRequest, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token",
			fcmErrorCode("INVALID_ARGUMENT"),
			badRequestDetail{typeBadRequest, []fieldViolation{{"message.token", "Invalid registration token"}}})
		return false
	case FateUnregistered:
		s.fcmReply(w, http.StatusNotFound, "NOT_FOUND", "Requested entity was not found.", fcmErrorCode("UNREGISTERED"))
		return false
	}
	return true
}

func (s *Sim) fcmFault(w http.ResponseWriter, r *http.Request, f *faultRule, project string) {
	retry := func() {
		if f.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
		}
	}
	switch f.Kind {
	case FaultTooManyRequests:
		retry()
		s.fcmReply(w, http.StatusTooManyRequests, "RESOURCE_EXHAUSTED",
			"Quota exceeded for quota metric 'Send requests' and limit 'Send requests per minute' of service 'fcm.googleapis.com' for consumer 'project_id:"+project+"'.",
			fcmErrorCode("QUOTA_EXCEEDED"))
	case FaultInternal:
		s.fcmReply(w, http.StatusInternalServerError, "INTERNAL", "Internal error encountered.", fcmErrorCode("INTERNAL"))
	case FaultUnavailable:
		retry()
		s.fcmReply(w, http.StatusServiceUnavailable, "UNAVAILABLE", "The service is currently unavailable.", fcmErrorCode("UNAVAILABLE"))
	case FaultGoAway:
		retry()
		// "Connection: close" makes Go's HTTP/2 server send GOAWAY and
		// close the connection once its streams finish; HTTP/1.1
		// clients see the connection closed after this answer.
		w.Header().Set("Connection", "close")
		s.fcmReply(w, http.StatusServiceUnavailable, "UNAVAILABLE", "The service is currently unavailable.", fcmErrorCode("UNAVAILABLE"))
	case FaultDrop:
		s.dropConn(r, ListenerFCM)
	case FaultThirdPartyAuth:
		s.fcmReply(w, http.StatusUnauthorized, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service", fcmErrorCode("THIRD_PARTY_AUTH_ERROR"))
	case FaultReason:
		// Validate has kept Status in 400..599 and Reason to letters,
		// digits and underscores. Retry-After is sent whatever the
		// status, so that a test can see how a client treats it on,
		// say, a 500.
		retry()
		s.fcmReply(w, f.Status, rpcStatusName(f.Status), fcmReasonMessage(f.Reason), fcmErrorCode(f.Reason))
	}
}

// rpcStatusName is the google.rpc.Code name Google's front end reports
// with an HTTP status.
func rpcStatusName(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "INVALID_ARGUMENT"
	case http.StatusUnauthorized:
		return "UNAUTHENTICATED"
	case http.StatusForbidden:
		return "PERMISSION_DENIED"
	case http.StatusNotFound:
		return "NOT_FOUND"
	case http.StatusTooManyRequests:
		return "RESOURCE_EXHAUSTED"
	case http.StatusInternalServerError:
		return "INTERNAL"
	case http.StatusServiceUnavailable:
		return "UNAVAILABLE"
	}
	return "UNKNOWN"
}

// fcmReasonMessage is the message FCM sends with an errorCode, so that an
// injected error reads like the real one in logs; reasons FCM does not
// document get a message saying where they came from.
func fcmReasonMessage(reason string) string {
	switch reason {
	case "UNREGISTERED":
		return "Requested entity was not found."
	case "INVALID_ARGUMENT":
		return "Request contains an invalid argument."
	case "SENDER_ID_MISMATCH":
		return "SenderId mismatch"
	case "QUOTA_EXCEEDED":
		return "Quota exceeded for quota metric 'Send requests' of service 'fcm.googleapis.com'."
	case "UNAVAILABLE":
		return "The service is currently unavailable."
	case "INTERNAL":
		return "Internal error encountered."
	case "THIRD_PARTY_AUTH_ERROR", "APNS_AUTH_ERROR":
		return "Auth error from APNS or Web Push Service"
	}
	return "Injected fault: " + reason + "."
}

// fcmMessageName makes a message name like FCM's:
// projects/p/messages/0:1700000000000000%0123456789abcdef. Names need to be
// unique, not secret, so the fast generator will do.
func fcmMessageName(project string, now time.Time) string {
	var rnd [8]byte
	binary.BigEndian.PutUint64(rnd[:], mrand.Uint64())
	var hx [16]byte
	hex.Encode(hx[:], rnd[:])
	var b strings.Builder
	b.Grow(len(project) + 64)
	b.WriteString("projects/")
	b.WriteString(project)
	b.WriteString("/messages/0:")
	b.WriteString(strconv.FormatInt(now.UnixMicro(), 10))
	b.WriteByte('%')
	b.Write(hx[:])
	return b.String()
}

// The request body is checked against a description of the FCM v1 schema
// rather than decoded into Go structs, for three reasons: Google's JSON
// parser accepts each field under its proto name and its lowerCamelCase
// name, and nothing else (encoding/json matches names case-insensitively);
// Google's errors name the offending field by its path and map entries by
// their position ('message.data[2].value'), which a decoder walking the
// token stream knows; and the simulator keeps the "message" object as
// received, byte for byte, for receipts.

// fieldKind is the JSON shape of a field.
type fieldKind uint8

const (
	kindString fieldKind = iota
	kindBool
	kindInt32
	kindFloat
	kindEnum
	kindDuration
	kindTimestamp
	kindStringMap
	kindStringList
	kindDurationList
	kindMessage
	kindStruct // google.protobuf.Struct: any JSON object
)

// fieldRole is what the parser does with a value beyond checking its shape.
type fieldRole uint8

const (
	roleNone fieldRole = iota
	roleValidateOnly
	roleMessage
	roleToken
	roleTopic
	roleCondition
	roleData // message.data and android.data: reserved keys
	roleColor
	roleLink
	roleLabel
	roleTTL
)

type fieldDesc struct {
	name string // proto name, as error paths spell it
	kind fieldKind
	// typ names the type in "Invalid value" errors: TYPE_STRING and the
	// like for scalars, a type URL otherwise.
	typ  string
	msg  *messageDesc
	enum []string // enum value names, by number
	role fieldRole
	// sized fields count toward the message payload size: a map's keys
	// and values, or a string (or list of strings) field's proto name and
	// value.
	sized bool
	// idx is the field's position in its message, for spotting a field
	// set twice.
	idx   uint8
	owner *messageDesc
}

type messageDesc struct {
	fields map[string]*fieldDesc // by proto name and by JSON (lowerCamelCase) name
}

func newMessageDesc(fields ...*fieldDesc) *messageDesc {
	if len(fields) > 64 {
		// sendParser.object keeps the fields it has seen in a uint64.
		panic("pushsim: FCM schema message with more than 64 fields")
	}
	m := &messageDesc{fields: make(map[string]*fieldDesc, 2*len(fields))}
	for i, f := range fields {
		if f.owner != nil {
			panic("pushsim: FCM schema field " + f.name + " belongs to two messages")
		}
		f.owner, f.idx = m, uint8(i)
		m.fields[f.name] = f
		m.fields[lowerCamel(f.name)] = f
	}
	return m
}

func lowerCamel(s string) string {
	var b strings.Builder
	up := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_':
			up = true
		case up && 'a' <= c && c <= 'z':
			b.WriteByte(c - 'a' + 'A')
			up = false
		default:
			b.WriteByte(c)
			up = false
		}
	}
	return b.String()
}

const fcmTypePrefix = "type.googleapis.com/google.firebase.fcm.v1."

func strField(name string, role fieldRole) *fieldDesc {
	return &fieldDesc{name: name, kind: kindString, typ: "TYPE_STRING", role: role}
}

// sizedStr is a notification string field, counted in the payload size.
func sizedStr(name string, role fieldRole) *fieldDesc {
	f := strField(name, role)
	f.sized = true
	return f
}

// sizedList is a notification list of strings, counted in the payload size.
func sizedList(name string) *fieldDesc {
	return &fieldDesc{name: name, kind: kindStringList, typ: "TYPE_STRING", sized: true}
}

func boolField(name string, role fieldRole) *fieldDesc {
	return &fieldDesc{name: name, kind: kindBool, typ: "TYPE_BOOL", role: role}
}

func mapField(name, entry string, role fieldRole, sized bool) *fieldDesc {
	return &fieldDesc{name: name, kind: kindStringMap, typ: fcmTypePrefix + entry, role: role, sized: sized}
}

func msgField(name, typ string, m *messageDesc, role fieldRole) *fieldDesc {
	return &fieldDesc{name: name, kind: kindMessage, typ: typ, msg: m, role: role}
}

func enumField(name, typ string, values ...string) *fieldDesc {
	return &fieldDesc{name: name, kind: kindEnum, typ: fcmTypePrefix + typ, enum: values}
}

const (
	typeDuration  = "type.googleapis.com/google.protobuf.Duration"
	typeTimestamp = "type.googleapis.com/google.protobuf.Timestamp"
	typeStruct    = "type.googleapis.com/google.protobuf.Struct"
)

// The FCM v1 schema, as https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages
// documents it. Every field firebase.google.com/go/v4/messaging sends is here.
var (
	fcmColorDesc = newMessageDesc(
		&fieldDesc{name: "red", kind: kindFloat, typ: "TYPE_FLOAT"},
		&fieldDesc{name: "green", kind: kindFloat, typ: "TYPE_FLOAT"},
		&fieldDesc{name: "blue", kind: kindFloat, typ: "TYPE_FLOAT"},
		&fieldDesc{name: "alpha", kind: kindFloat, typ: "type.googleapis.com/google.protobuf.FloatValue"},
	)
	fcmLightSettingsDesc = newMessageDesc(
		msgField("color", "type.googleapis.com/google.type.Color", fcmColorDesc, roleNone),
		&fieldDesc{name: "light_on_duration", kind: kindDuration, typ: typeDuration},
		&fieldDesc{name: "light_off_duration", kind: kindDuration, typ: typeDuration},
	)
	fcmAndroidNotificationDesc = newMessageDesc(
		sizedStr("title", roleNone),
		sizedStr("body", roleNone),
		sizedStr("icon", roleNone),
		sizedStr("color", roleColor),
		sizedStr("sound", roleNone),
		sizedStr("tag", roleNone),
		sizedStr("click_action", roleNone),
		sizedStr("body_loc_key", roleNone),
		sizedList("body_loc_args"),
		sizedStr("title_loc_key", roleNone),
		sizedList("title_loc_args"),
		sizedStr("channel_id", roleNone),
		sizedStr("ticker", roleNone),
		boolField("sticky", roleNone),
		&fieldDesc{name: "event_time", kind: kindTimestamp, typ: typeTimestamp},
		boolField("local_only", roleNone),
		enumField("notification_priority", "AndroidNotification.NotificationPriority",
			"PRIORITY_UNSPECIFIED", "PRIORITY_MIN", "PRIORITY_LOW", "PRIORITY_DEFAULT", "PRIORITY_HIGH", "PRIORITY_MAX"),
		boolField("default_sound", roleNone),
		boolField("default_vibrate_timings", roleNone),
		boolField("default_light_settings", roleNone),
		&fieldDesc{name: "vibrate_timings", kind: kindDurationList, typ: typeDuration},
		enumField("visibility", "AndroidNotification.Visibility",
			"VISIBILITY_UNSPECIFIED", "PRIVATE", "PUBLIC", "SECRET"),
		&fieldDesc{name: "notification_count", kind: kindInt32, typ: "TYPE_INT32"},
		msgField("light_settings", fcmTypePrefix+"LightSettings", fcmLightSettingsDesc, roleNone),
		sizedStr("image", roleNone),
		boolField("bypass_proxy_notification", roleNone),
		enumField("proxy", "AndroidNotification.Proxy",
			"PROXY_UNSPECIFIED", "ALLOW", "DENY", "IF_PRIORITY_LOWERED"),
	)
	fcmAndroidDesc = newMessageDesc(
		strField("collapse_key", roleNone),
		enumField("priority", "AndroidMessagePriority", "NORMAL", "HIGH"),
		&fieldDesc{name: "ttl", kind: kindDuration, typ: typeDuration, role: roleTTL},
		strField("restricted_package_name", roleNone),
		mapField("data", "AndroidConfig.DataEntry", roleData, true),
		msgField("notification", fcmTypePrefix+"AndroidNotification", fcmAndroidNotificationDesc, roleNone),
		msgField("fcm_options", fcmTypePrefix+"AndroidFcmOptions", newMessageDesc(strField("analytics_label", roleLabel)), roleNone),
		boolField("direct_boot_ok", roleNone),
		boolField("bandwidth_constrained_ok", roleNone),
		boolField("restricted_satellite_ok", roleNone),
	)
	fcmWebpushDesc = newMessageDesc(
		mapField("headers", "WebpushConfig.HeadersEntry", roleNone, false),
		mapField("data", "WebpushConfig.DataEntry", roleNone, false),
		&fieldDesc{name: "notification", kind: kindStruct, typ: typeStruct},
		msgField("fcm_options", fcmTypePrefix+"WebpushFcmOptions", newMessageDesc(
			strField("link", roleLink),
			strField("analytics_label", roleLabel),
		), roleNone),
	)
	fcmApnsDesc = newMessageDesc(
		mapField("headers", "ApnsConfig.HeadersEntry", roleNone, false),
		&fieldDesc{name: "payload", kind: kindStruct, typ: typeStruct},
		msgField("fcm_options", fcmTypePrefix+"ApnsFcmOptions", newMessageDesc(
			strField("analytics_label", roleLabel),
			strField("image", roleNone),
		), roleNone),
		strField("live_activity_token", roleNone),
	)
	fcmMessageDesc = newMessageDesc(
		strField("name", roleNone),
		mapField("data", "Message.DataEntry", roleData, true),
		msgField("notification", fcmTypePrefix+"Notification", newMessageDesc(
			sizedStr("title", roleNone),
			sizedStr("body", roleNone),
			sizedStr("image", roleNone),
		), roleNone),
		msgField("android", fcmTypePrefix+"AndroidConfig", fcmAndroidDesc, roleNone),
		msgField("webpush", fcmTypePrefix+"WebpushConfig", fcmWebpushDesc, roleNone),
		msgField("apns", fcmTypePrefix+"ApnsConfig", fcmApnsDesc, roleNone),
		msgField("fcm_options", fcmTypePrefix+"FcmOptions", newMessageDesc(strField("analytics_label", roleLabel)), roleNone),
		strField("token", roleToken),
		strField("topic", roleTopic),
		strField("condition", roleCondition),
	)
	fcmSendRequestDesc = newMessageDesc(
		boolField("validate_only", roleValidateOnly),
		msgField("message", fcmTypePrefix+"Message", fcmMessageDesc, roleMessage),
	)
)

// sendRequest is what the handler needs from a messages:send body.
type sendRequest struct {
	validateOnly bool
	// message is the "message" object exactly as received.
	message []byte
	// target is the name of the target field set: token, topic or condition.
	target                  string
	token, topic, condition string
	// size is FCM's payload size: the bytes of the keys and values of
	// message.data and android.data, and of the string fields of
	// message.notification and android.notification (a field's proto
	// name standing as its key), all as decoded. Google's limit "includes
	// both the keys and the values"; counting decoded text rather than
	// JSON keeps escapes from weighing more than the text they stand for
	// (the Admin SDK writes '<' as \u003c), and proto names rather than
	// the names as spelled keeps camelCase and snake_case spellings of one
	// message the same size.
	size int
}

// fieldError is an INVALID_ARGUMENT about one field.
type fieldError struct {
	field, desc string
}

type sendParser struct {
	body []byte
	dec  *json.Decoder
	req  sendRequest
}

// parseSendRequest checks a messages:send body as FCM does.
func parseSendRequest(body []byte) (sendRequest, *fieldError) {
	p := &sendParser{body: body, dec: json.NewDecoder(bytes.NewReader(body))}
	p.dec.UseNumber()
	t, err := p.dec.Token()
	switch {
	case err == io.EOF:
		// An empty body is an empty request.
	case err != nil:
		return sendRequest{}, p.syntaxError(err)
	case t != json.Delim('{'):
		return sendRequest{}, &fieldError{"", "Invalid JSON payload received. Expected a JSON object, got " + describeToken(t) + "."}
	default:
		if fe := p.object(fcmSendRequestDesc, ""); fe != nil {
			return sendRequest{}, fe
		}
		if _, err := p.dec.Token(); err != io.EOF {
			return sendRequest{}, &fieldError{"", "Invalid JSON payload received. Unexpected data after the JSON object."}
		}
	}
	req := p.req
	if req.target == "" {
		return sendRequest{}, &fieldError{"message", "Recipient of the message is not set."}
	}
	limit, to := fcmMaxPayload, ""
	if req.target != "token" {
		limit, to = fcmMaxTopicPayload, " for a message to a topic or condition"
	}
	if req.size > limit {
		return sendRequest{}, &fieldError{"message", "Message is too big: its payload (the keys and values of data and notification) is " +
			strconv.Itoa(req.size) + " bytes, over the limit of " + strconv.Itoa(limit) + " bytes" + to + "."}
	}
	return req, nil
}

func (p *sendParser) syntaxError(err error) *fieldError {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return &fieldError{"", "Invalid JSON payload received. " + strings.TrimPrefix(err.Error(), "json: ") + "."}
}

// object reads the fields of an object whose '{' has been read.
func (p *sendParser) object(m *messageDesc, path string) *fieldError {
	// A field set twice (perhaps once by each of its names) is refused,
	// as protobuf's JSON parsers do: which one should win is a guess, and
	// the receipt and the checks must describe the same message.
	var seen uint64
	for p.dec.More() {
		t, err := p.dec.Token()
		if err != nil {
			return p.syntaxError(err)
		}
		key, _ := t.(string) // the decoder has checked that keys are strings
		f := m.fields[key]
		if f == nil {
			if path == "" {
				return &fieldError{"", "Invalid JSON payload received. Unknown name " + strconv.Quote(key) + ": Cannot find field."}
			}
			return &fieldError{path, "Invalid JSON payload received. Unknown name " + strconv.Quote(key) + " at '" + path + "': Cannot find field."}
		}
		if seen&(1<<f.idx) != 0 {
			at := ""
			if path != "" {
				at = " at '" + path + "'"
			}
			return &fieldError{path, "Invalid JSON payload received. Duplicate field " + strconv.Quote(key) + at + "."}
		}
		seen |= 1 << f.idx
		fpath := f.name
		if path != "" {
			fpath = path + "." + f.name
		}
		if fe := p.value(f, fpath, path, key); fe != nil {
			return fe
		}
	}
	if _, err := p.dec.Token(); err != nil {
		return p.syntaxError(err)
	}
	return nil
}

// value reads one field's value.
func (p *sendParser) value(f *fieldDesc, path, parent, key string) *fieldError {
	start := p.dec.InputOffset()
	t, err := p.dec.Token()
	if err != nil {
		return p.syntaxError(err)
	}
	if t == nil {
		// null leaves a field unset, as in proto3 JSON.
		return nil
	}
	repeated := f.kind == kindStringList || f.kind == kindDurationList
	if t == json.Delim('[') && !repeated {
		at := ""
		if parent != "" {
			at = " at '" + parent + "'"
		}
		return &fieldError{parent, "Invalid JSON payload received. Unknown name " + strconv.Quote(key) + at + ": Proto field is not repeating, cannot start list."}
	}
	switch f.kind {
	case kindString:
		s, ok := t.(string)
		if !ok {
			return invalidValue(path, f.typ, t)
		}
		if fe := p.checkString(f, path, s); fe != nil {
			return fe
		}
		if f.sized {
			p.req.size += len(f.name) + len(s)
		}
	case kindBool:
		b, ok := t.(bool)
		if !ok {
			return invalidValue(path, f.typ, t)
		}
		if f.role == roleValidateOnly {
			p.req.validateOnly = b
		}
	case kindInt32:
		if !isInt32(t) {
			return invalidValue(path, f.typ, t)
		}
	case kindFloat:
		if !isFloat(t) {
			return invalidValue(path, f.typ, t)
		}
	case kindEnum:
		if !enumAccepts(f.enum, t) {
			return invalidValue(path, f.typ, t)
		}
	case kindDuration:
		s, _ := t.(string)
		secs, ok := parseProtoDuration(s)
		if !ok {
			return invalidValue(path, f.typ, t)
		}
		if f.role == roleTTL && (strings.HasPrefix(s, "-") || secs > fcmMaxTTLSeconds) {
			return &fieldError{path, "Invalid value at '" + path + "': the TTL must be between 0s and 4 weeks (" + strconv.Itoa(fcmMaxTTLSeconds) + "s), got " + s + "."}
		}
	case kindTimestamp:
		s, ok := t.(string)
		if !ok {
			return invalidValue(path, f.typ, t)
		}
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			return invalidValue(path, f.typ, t)
		}
	case kindStringMap:
		if t != json.Delim('{') {
			return invalidValue(path, f.typ, t)
		}
		if fe := p.stringMap(f, path); fe != nil {
			return fe
		}
	case kindStringList, kindDurationList:
		if t != json.Delim('[') {
			return invalidValue(path, f.typ, t)
		}
		if f.sized {
			p.req.size += len(f.name)
		}
		for i := 0; p.dec.More(); i++ {
			t, err := p.dec.Token()
			if err != nil {
				return p.syntaxError(err)
			}
			s, ok := t.(string)
			if ok && f.kind == kindDurationList {
				_, ok = parseProtoDuration(s)
			}
			if !ok {
				return invalidValue(path+"["+strconv.Itoa(i)+"]", f.typ, t)
			}
			if f.sized {
				p.req.size += len(s)
			}
		}
		if _, err := p.dec.Token(); err != nil {
			return p.syntaxError(err)
		}
	case kindMessage:
		if t != json.Delim('{') {
			return invalidValue(path, f.typ, t)
		}
		if fe := p.object(f.msg, path); fe != nil {
			return fe
		}
	case kindStruct:
		if t != json.Delim('{') {
			return invalidValue(path, f.typ, t)
		}
		if err := p.skip(); err != nil {
			return p.syntaxError(err)
		}
	}
	if f.role == roleMessage {
		end := p.dec.InputOffset()
		// start is just past the key; the object begins after the colon.
		i := int(start)
		for i < int(end) && p.body[i] != '{' {
			i++
		}
		p.req.message = p.body[i:end]
	}
	return nil
}

// stringMap reads a map<string, string> whose '{' has been read.
func (p *sendParser) stringMap(f *fieldDesc, path string) *fieldError {
	var keys mapKeys
	for i := 0; p.dec.More(); i++ {
		t, err := p.dec.Token()
		if err != nil {
			return p.syntaxError(err)
		}
		k, _ := t.(string)
		if t, err = p.dec.Token(); err != nil {
			return p.syntaxError(err)
		}
		v, ok := t.(string)
		if !ok {
			return invalidValue(path+"["+strconv.Itoa(i)+"].value", "TYPE_STRING", t)
		}
		if f.role == roleData && reservedDataKey(k) {
			return &fieldError{path, "Invalid value at '" + path + "': data key " + strconv.Quote(k) +
				" is reserved (from, notification, message_type and keys starting with google. or gcm. are)."}
		}
		// A key given twice is refused, as protobuf's JSON parsers do,
		// for the reason object refuses a field given twice.
		if !keys.add(k) {
			return &fieldError{path, "Invalid JSON payload received. Duplicate map key " + strconv.Quote(k) + " at '" + path + "'."}
		}
		if f.sized {
			p.req.size += len(k) + len(v)
		}
	}
	if _, err := p.dec.Token(); err != nil {
		return p.syntaxError(err)
	}
	return nil
}

// mapKeys is the set of keys a map has had so far. Maps in messages are
// small, so the first few keys are kept in a slice, on the stack, and a
// hash set is made only for a map with more.
type mapKeys struct {
	few  [8]string
	n    int
	many map[string]struct{}
}

// add adds k and reports whether it was new.
func (m *mapKeys) add(k string) bool {
	if m.many != nil {
		if _, dup := m.many[k]; dup {
			return false
		}
		m.many[k] = struct{}{}
		return true
	}
	for _, seen := range m.few[:m.n] {
		if seen == k {
			return false
		}
	}
	if m.n < len(m.few) {
		m.few[m.n] = k
		m.n++
		return true
	}
	m.many = make(map[string]struct{}, 2*len(m.few))
	for _, seen := range m.few {
		m.many[seen] = struct{}{}
	}
	m.many[k] = struct{}{}
	return true
}

// skip reads the rest of a value whose opening '{' or '[' has been read.
func (p *sendParser) skip() error {
	for depth := 1; depth > 0; {
		t, err := p.dec.Token()
		if err != nil {
			return err
		}
		switch t {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
	return nil
}

// checkString applies a string field's own rules.
func (p *sendParser) checkString(f *fieldDesc, path, s string) *fieldError {
	switch f.role {
	case roleToken, roleTopic, roleCondition:
		// The three are a proto oneof: setting a second one, even to "",
		// is an error.
		if p.req.target != "" && p.req.target != f.name {
			return &fieldError{"message", "Invalid value at 'message' (oneof), oneof field 'target' is already set. Cannot set '" + f.name + "'"}
		}
		p.req.target = f.name
		switch f.role {
		case roleToken:
			p.req.token = s
		case roleTopic:
			if !validTopic(strings.TrimPrefix(s, "/topics/")) {
				return &fieldError{path, "Invalid value at '" + path + "': topic names must match [a-zA-Z0-9-_.~%]{1,900}, optionally after \"/topics/\"; got " + strconv.Quote(s) + "."}
			}
			p.req.topic = s
		case roleCondition:
			if why := checkCondition(s); why != "" {
				return &fieldError{path, "Invalid condition expression provided: " + why + "."}
			}
			p.req.condition = s
		}
	case roleColor:
		if !validColor(s) {
			return &fieldError{path, "Invalid value at '" + path + "': colors must be in the form #rrggbb, got " + strconv.Quote(s) + "."}
		}
	case roleLink:
		if !strings.HasPrefix(s, "https://") || len(s) == len("https://") {
			return &fieldError{path, "Invalid value at '" + path + "': the link must be an HTTPS URL, got " + strconv.Quote(s) + "."}
		}
	case roleLabel:
		if len(s) > 50 || !validTopic(s) {
			return &fieldError{path, "Invalid value at '" + path + "': analytics labels must match ^[a-zA-Z0-9-_.~%]{1,50}$, got " + strconv.Quote(s) + "."}
		}
	}
	return nil
}

// invalidValue is Google's error for a value of the wrong type.
func invalidValue(path, typ string, t json.Token) *fieldError {
	return &fieldError{path, "Invalid value at '" + path + "' (" + typ + "), " + describeToken(t)}
}

// describeToken prints a value as Google's errors quote it.
func describeToken(t json.Token) string {
	switch v := t.(type) {
	case string:
		return strconv.Quote(v)
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	case nil:
		return "null"
	case json.Delim:
		if v == '{' {
			return "Starting an object on a scalar field"
		}
		return "Starting a list on a scalar field"
	}
	return "?"
}

func isInt32(t json.Token) bool {
	var s string
	switch v := t.(type) {
	case json.Number:
		s = v.String()
	case string:
		s = v // proto3 JSON also takes integers as strings
	default:
		return false
	}
	if _, err := strconv.ParseInt(s, 10, 32); err == nil {
		return true
	}
	// 1.0 and 1e2 are integers too.
	f, err := strconv.ParseFloat(s, 64)
	return err == nil && f == float64(int32(f))
}

func isFloat(t json.Token) bool {
	switch v := t.(type) {
	case json.Number:
		return true
	case string:
		if v == "NaN" || v == "Infinity" || v == "-Infinity" {
			return true
		}
		_, err := strconv.ParseFloat(v, 64)
		return err == nil
	}
	return false
}

// enumAccepts takes an enum value by name, in any case (as Google's front
// end does: the Admin SDK sends "high" for HIGH), or by number.
func enumAccepts(values []string, t json.Token) bool {
	switch v := t.(type) {
	case string:
		for _, name := range values {
			if strings.EqualFold(name, v) {
				return true
			}
		}
	case json.Number:
		n, err := strconv.ParseInt(v.String(), 10, 32)
		return err == nil && n >= 0 && n < int64(len(values))
	}
	return false
}

// parseProtoDuration reads a google.protobuf.Duration in its JSON form,
// "3.5s": seconds with up to nine fractional digits. It returns the whole
// seconds.
func parseProtoDuration(s string) (secs int64, ok bool) {
	num, ok := strings.CutSuffix(s, "s")
	if !ok || num == "" {
		return 0, false
	}
	neg := num[0] == '-'
	if neg {
		num = num[1:]
	}
	whole, frac, hasFrac := strings.Cut(num, ".")
	if whole == "" || (hasFrac && (frac == "" || len(frac) > 9)) || !allDigits(whole) || !allDigits(frac) {
		return 0, false
	}
	n, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || n > 315576000000 {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func validColor(s string) bool {
	if len(s) != 7 || s[0] != '#' {
		return false
	}
	for i := 1; i < 7; i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// validTopic reports whether s is a bare topic name: [a-zA-Z0-9-_.~%]{1,900}.
func validTopic(s string) bool {
	if len(s) == 0 || len(s) > 900 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || strings.IndexByte("-_.~%", c) >= 0) {
			return false
		}
	}
	return true
}

func reservedDataKey(k string) bool {
	switch k {
	case "from", "notification", "message_type":
		return true
	}
	return strings.HasPrefix(k, "google.") || strings.HasPrefix(k, "gcm.")
}

// checkCondition parses a topic condition such as
// "'dogs' in topics && ('cats' in topics || !('birds' in topics))" and
// says what is wrong with it, or "" when nothing is. Its work is linear in
// the length, which is capped, and its recursion is capped by depth.
func checkCondition(s string) string {
	if len(s) > fcmMaxConditionLen {
		return "a condition may be at most " + strconv.Itoa(fcmMaxConditionLen) + " bytes long, got " + strconv.Itoa(len(s))
	}
	c := condParser{s: s}
	if !c.expr(0) {
		return c.why
	}
	c.space()
	if c.i != len(c.s) {
		return "unexpected text at offset " + strconv.Itoa(c.i)
	}
	return ""
}

type condParser struct {
	s      string
	i      int
	topics int
	why    string
}

func (c *condParser) fail(why string) bool {
	if c.why == "" {
		c.why = why + " at offset " + strconv.Itoa(c.i)
	}
	return false
}

func (c *condParser) space() {
	for c.i < len(c.s) && (c.s[c.i] == ' ' || c.s[c.i] == '\t') {
		c.i++
	}
}

// expr reads terms joined by && and ||. depth counts the parentheses and
// negations around it.
func (c *condParser) expr(depth int) bool {
	if !c.term(depth) {
		return false
	}
	for {
		c.space()
		if !strings.HasPrefix(c.s[c.i:], "&&") && !strings.HasPrefix(c.s[c.i:], "||") {
			return true
		}
		c.i += 2
		if !c.term(depth) {
			return false
		}
	}
}

// term reads a topic test, a negated term or a parenthesised expression.
// The depth check is here, where both kinds of nesting recurse, so that
// neither "((((..." nor "!!!!..." can run the stack deep.
func (c *condParser) term(depth int) bool {
	if depth > fcmMaxConditionDepth {
		return c.fail("nested more than " + strconv.Itoa(fcmMaxConditionDepth) + " deep")
	}
	c.space()
	if c.i == len(c.s) {
		return c.fail("expected a topic test")
	}
	switch q := c.s[c.i]; q {
	case '!':
		c.i++
		return c.term(depth + 1)
	case '(':
		c.i++
		if !c.expr(depth + 1) {
			return false
		}
		c.space()
		if c.i == len(c.s) || c.s[c.i] != ')' {
			return c.fail("expected ')'")
		}
		c.i++
		return true
	case '\'', '"':
		end := strings.IndexByte(c.s[c.i+1:], q)
		if end < 0 {
			return c.fail("unterminated topic name")
		}
		if !validTopic(c.s[c.i+1 : c.i+1+end]) {
			return c.fail("invalid topic name")
		}
		// FCM documents at most five topics in a condition; stopping
		// at the sixth also saves reading the rest.
		if c.topics++; c.topics > fcmMaxConditionTopics {
			return c.fail("a condition may name at most " + strconv.Itoa(fcmMaxConditionTopics) + " topics; the sixth starts")
		}
		c.i += end + 2
		c.space()
		if !strings.HasPrefix(c.s[c.i:], "in") {
			return c.fail("expected \"in topics\"")
		}
		c.i += 2
		n := c.i
		c.space()
		if c.i == n || !strings.HasPrefix(c.s[c.i:], "topics") {
			return c.fail("expected \"in topics\"")
		}
		c.i += len("topics")
		return true
	}
	return c.fail("expected a quoted topic name, '!' or '('")
}
