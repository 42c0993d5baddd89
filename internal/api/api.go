// Package api is pushd's HTTP API for IM servers: the device registry,
// mutes, badge resets and job submission, behind bearer-token auth.
package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pushd/pushd/internal/fielderr"
	"github.com/pushd/pushd/internal/installations"
	"github.com/pushd/pushd/internal/mute"
	"github.com/pushd/pushd/internal/secret"
	"github.com/pushd/pushd/pushjob"
)

// Installations is the device registry as the API uses it.
type Installations interface {
	Upsert(ctx context.Context, in installations.Installation) (installations.Installation, error)
	Delete(ctx context.Context, app, id string) error
	ListByClient(ctx context.Context, app, client string) ([]installations.Installation, error)
	ResetBadge(ctx context.Context, app, client string) error
}

// Mutes is the mute store as the API uses it.
type Mutes interface {
	Set(ctx context.Context, m mute.Mute, now time.Time) error
	Delete(ctx context.Context, app, client, conv string) error
	List(ctx context.Context, app, client string, now time.Time) ([]mute.Mute, error)
}

// Enqueuer puts jobs on the queue.
type Enqueuer interface {
	Enqueue(ctx context.Context, j pushjob.Job) (taskID string, err error)
}

// Traces reads what became of a message.
type Traces interface {
	Trace(ctx context.Context, app, messageID string) ([]installations.Delivery, error)
}

// Check is a readiness probe: nil when the dependency answers.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// Config wires the API.
type Config struct {
	// Tokens are the accepted bearer tokens.
	Tokens        []secret.Secret
	Apps          []string
	Installations Installations
	Mutes         Mutes
	Enqueuer      Enqueuer
	Traces        Traces
	Ready         []Check
	Logger        *slog.Logger
	// MaxBody is the largest request body; zero is DefaultMaxBody.
	MaxBody int64
	Now     func() time.Time
}

// DefaultMaxBody is the largest request body unless Config says otherwise:
// 64 MiB, which a job of a million recipients (pushjob.MaxRecipients) fits
// with ids of up to about 60 bytes. A million ids of the longest kind
// (pushjob.MaxIDLen) would be 260 MB, more than one request should make
// pushd hold; an IM server with such ids enqueues through pushjob, which
// has no body limit, or raises MaxBody.
const DefaultMaxBody = 64 << 20

// Handler serves the API.
type Handler struct {
	cfg    Config
	log    *slog.Logger
	tokens [][sha256.Size]byte
	apps   map[string]bool
	mux    *http.ServeMux
}

// New returns the API's handler.
func New(cfg Config) (*Handler, error) {
	if len(cfg.Tokens) == 0 {
		return nil, errors.New("api: at least one bearer token is required")
	}
	for i, t := range cfg.Tokens {
		// An empty token would let "Authorization: Bearer " in.
		if t == "" {
			return nil, fmt.Errorf("api: bearer token %d is empty", i)
		}
	}
	if cfg.Installations == nil || cfg.Mutes == nil || cfg.Enqueuer == nil {
		return nil, errors.New("api: installations, mutes and enqueuer are required")
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &Handler{cfg: cfg, log: cfg.Logger, apps: make(map[string]bool)}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	for _, t := range cfg.Tokens {
		// Hashing first makes the comparison constant-time in the token's
		// length as well as its content.
		h.tokens = append(h.tokens, sha256.Sum256([]byte(t.Reveal())))
	}
	for _, a := range cfg.Apps {
		h.apps[a] = true
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", h.healthz)
	mux.HandleFunc("GET /readyz", h.readyz)
	mux.Handle("PUT /v1/installations/{id}", h.auth(h.putInstallation))
	mux.Handle("DELETE /v1/installations/{id}", h.auth(h.deleteInstallation))
	mux.Handle("GET /v1/installations", h.auth(h.listInstallations))
	mux.Handle("DELETE /v1/clients/{client_id}/badge", h.auth(h.resetBadge))
	mux.Handle("PUT /v1/mutes/{client_id}/{conversation_id}", h.auth(h.putMute))
	mux.Handle("DELETE /v1/mutes/{client_id}/{conversation_id}", h.auth(h.deleteMute))
	mux.Handle("GET /v1/mutes", h.auth(h.listMutes))
	mux.Handle("POST /v1/push", h.auth(h.push))
	mux.Handle("GET /v1/messages/{message_id}", h.auth(h.trace))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such route: "+r.Method+" "+r.URL.Path, nil)
	})
	h.mux = mux
	return h, nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// FieldError names a field and the rule it broke.
type FieldError = fielderr.Error

type errorBody struct {
	Error  string       `json:"error"`
	Fields []FieldError `json:"fields,omitempty"`
	// TaskID is the task that already holds a message, on 409, so that a
	// client retrying after a lost reply can treat it as success.
	TaskID string `json:"task_id,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string, fields []FieldError) {
	writeJSON(w, status, errorBody{Error: msg, Fields: fields})
}

func (h *Handler) auth(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The scheme is case-insensitive (RFC 7235); the token is not.
		hdr := r.Header.Get("Authorization")
		const scheme = "Bearer "
		ok := len(hdr) > len(scheme) && strings.EqualFold(hdr[:len(scheme)], scheme)
		if !ok || !h.tokenOK(hdr[len(scheme):]) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="pushd"`)
			writeError(w, http.StatusUnauthorized, "a valid bearer token is required (Authorization: Bearer <token>)", nil)
			return
		}
		next(w, r)
	})
}

func (h *Handler) tokenOK(tok string) bool {
	sum := sha256.Sum256([]byte(tok))
	ok := 0
	for i := range h.tokens {
		ok |= subtle.ConstantTimeCompare(sum[:], h.tokens[i][:])
	}
	return ok == 1
}

func (h *Handler) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers "ok" or "unavailable" for each dependency. It needs no
// token, so the reason a check failed (addresses, database errors) goes to
// the log, not to the caller.
func (h *Handler) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	status := http.StatusOK
	out := make(map[string]string)
	for _, c := range h.cfg.Ready {
		if err := c.Check(ctx); err != nil {
			status = http.StatusServiceUnavailable
			out[c.Name] = "unavailable"
			h.log.Warn("api: not ready", "check", c.Name, "err", err)
			continue
		}
		out[c.Name] = "ok"
	}
	writeJSON(w, status, out)
}

// readyTimeout bounds all of /readyz's checks together.
const readyTimeout = 3 * time.Second

// decode reads a JSON body strictly: unknown fields and trailing data are
// errors, and a body over the limit is 413.
// readBody reads the request body up to the limit; over it is 413.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", h.cfg.MaxBody), nil)
		return nil, false
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "read body: "+err.Error(), nil)
		return nil, false
	}
	return body, true
}

func (h *Handler) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	body, ok := h.readBody(w, r)
	if !ok {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if err == io.EOF {
			writeError(w, http.StatusBadRequest, "empty body: want a JSON object", nil)
			return false
		}
		if f, ok := decodeField(err); ok {
			writeError(w, http.StatusBadRequest, badField(f), []FieldError{f})
			return false
		}
		writeError(w, http.StatusBadRequest, "malformed JSON: "+err.Error(), nil)
		return false
	}
	// Token, unlike More, also catches a stray '}' or ']' after the object.
	if _, err := dec.Token(); err != io.EOF {
		writeError(w, http.StatusBadRequest, "malformed JSON: data after the object", nil)
		return false
	}
	return true
}

// badField is the error of a body whose JSON holds f's mistake.
func badField(f FieldError) string {
	return fmt.Sprintf("malformed JSON: field %q: %s", f.Field, f.Rule)
}

// decodeField is the field a well-formed body got wrong: a value of the
// wrong type, or a field the route does not take. Said in the words of
// the API, not of Go's types.
func decodeField(err error) (FieldError, bool) {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return FieldError{Field: te.Field, Rule: "want " + jsonKind(te.Type.Kind())}, true
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if field, err := strconv.Unquote(name); err == nil {
			return FieldError{Field: field, Rule: "unknown field"}, true
		}
	}
	return FieldError{}, false
}

func jsonKind(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "a number"
}

// bodyApp picks the app id of a request that may name it in its query, as
// every route does, or in its body: either one, or both when they agree.
// It then checks it as app does.
func (h *Handler) bodyApp(w http.ResponseWriter, r *http.Request, inBody string) (string, bool) {
	inQuery := r.URL.Query().Get("app_id")
	switch {
	case inQuery != "" && inBody != "" && inQuery != inBody:
		writeError(w, http.StatusBadRequest, "invalid request", []FieldError{{
			Field: "app_id", Rule: fmt.Sprintf("query and body disagree (%q in the query, %q in the body)", inQuery, inBody),
		}})
		return "", false
	case inBody == "":
		inBody = inQuery
	}
	return h.app(w, inBody)
}

// app reads the app id from the query (default "default") and checks it is
// configured.
func (h *Handler) app(w http.ResponseWriter, appID string) (string, bool) {
	if appID == "" {
		appID = pushjob.DefaultApp
	}
	if !h.apps[appID] {
		writeError(w, http.StatusBadRequest, "unknown app", []FieldError{{Field: "app_id", Rule: fmt.Sprintf("app %q is not configured", appID)}})
		return "", false
	}
	return appID, true
}

// fieldErrors turns a validation error into the 400 body's list.
func fieldErrors(err error) ([]FieldError, bool) {
	var fe *fielderr.List
	if errors.As(err, &fe) {
		return fe.Fields, true
	}
	var je *pushjob.ValidationError
	if errors.As(err, &je) {
		return je.Fields, true
	}
	return nil, false
}

// id is an id a request names in its path or query.
type id struct {
	field, value string
	maxLen       int
}

// checkIDs answers 400, naming each bad one, when an id breaks the rule
// ids are stored under: such an id can match nothing, and PostgreSQL
// would refuse some (a NUL) with a 500.
func checkIDs(w http.ResponseWriter, ids ...id) bool {
	fe := fielderr.List{What: "request"}
	for _, i := range ids {
		fe.CheckText(i.field, i.value, i.maxLen, true)
	}
	if len(fe.Fields) > 0 {
		writeError(w, http.StatusBadRequest, "invalid request", fe.Fields)
		return false
	}
	return true
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if fields, ok := fieldErrors(err); ok {
		writeError(w, http.StatusBadRequest, "invalid request", fields)
		return
	}
	if errors.Is(err, installations.ErrNotFound) || errors.Is(err, mute.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not found", nil)
		return
	}
	h.log.Error("api: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, "internal error", nil)
}

type installationBody struct {
	AppID     string `json:"app_id"`
	ClientID  string `json:"client_id"`
	Provider  string `json:"provider"`
	Platform  string `json:"platform"`
	Token     string `json:"token"`
	APNsEnv   string `json:"apns_env"`
	APNsTopic string `json:"apns_topic"`
	Locale    string `json:"locale"`
	Timezone  string `json:"timezone"`
}

func (h *Handler) putInstallation(w http.ResponseWriter, r *http.Request) {
	var b installationBody
	if !h.decode(w, r, &b) {
		return
	}
	app, ok := h.bodyApp(w, r, b.AppID)
	if !ok {
		return
	}
	in := installations.Installation{
		ID: r.PathValue("id"), AppID: app, ClientID: b.ClientID,
		Provider: installations.Provider(b.Provider), Platform: installations.Platform(b.Platform),
		Token: b.Token, APNsEnv: b.APNsEnv, APNsTopic: b.APNsTopic, Locale: b.Locale, Timezone: b.Timezone,
	}
	got, err := h.cfg.Installations.Upsert(r.Context(), in)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, got)
}

func (h *Handler) deleteInstallation(w http.ResponseWriter, r *http.Request) {
	if !checkIDs(w, id{"id", r.PathValue("id"), installations.MaxIDLen}) {
		return
	}
	h.noContent(w, r, func(ctx context.Context, app string) error {
		return h.cfg.Installations.Delete(ctx, app, r.PathValue("id"))
	})
}

// noContent runs an action on the query's app and answers 204, or the
// action's error.
func (h *Handler) noContent(w http.ResponseWriter, r *http.Request, action func(ctx context.Context, app string) error) {
	app, ok := h.app(w, r.URL.Query().Get("app_id"))
	if !ok {
		return
	}
	if err := action(r.Context(), app); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// clientQuery reads the app and the required client_id of a listing.
func (h *Handler) clientQuery(w http.ResponseWriter, r *http.Request) (app, client string, ok bool) {
	q := r.URL.Query()
	if app, ok = h.app(w, q.Get("app_id")); !ok {
		return "", "", false
	}
	client = q.Get("client_id")
	if !checkIDs(w, id{"client_id", client, installations.MaxClientIDLen}) {
		return "", "", false
	}
	return app, client, true
}

func (h *Handler) listInstallations(w http.ResponseWriter, r *http.Request) {
	app, client, ok := h.clientQuery(w, r)
	if !ok {
		return
	}
	list, err := h.cfg.Installations.ListByClient(r.Context(), app, client)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if list == nil {
		list = []installations.Installation{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"installations": list})
}

func (h *Handler) resetBadge(w http.ResponseWriter, r *http.Request) {
	if !checkIDs(w, id{"client_id", r.PathValue("client_id"), installations.MaxClientIDLen}) {
		return
	}
	h.noContent(w, r, func(ctx context.Context, app string) error {
		return h.cfg.Installations.ResetBadge(ctx, app, r.PathValue("client_id"))
	})
}

type muteBody struct {
	AppID string `json:"app_id"`
	// Until is read here rather than by encoding/json, whose error would
	// not say which field held the bad time.
	Until         *string `json:"until"`
	AllowMentions bool    `json:"allow_mentions"`
}

func (h *Handler) putMute(w http.ResponseWriter, r *http.Request) {
	var b muteBody
	if !h.decode(w, r, &b) {
		return
	}
	app, ok := h.bodyApp(w, r, b.AppID)
	if !ok {
		return
	}
	m := mute.Mute{AppID: app, ClientID: r.PathValue("client_id"), ConversationID: r.PathValue("conversation_id"), AllowMentions: b.AllowMentions}
	if b.Until != nil {
		until, err := time.Parse(time.RFC3339Nano, *b.Until)
		if err != nil {
			f := FieldError{Field: "until", Rule: "an RFC 3339 time such as 2026-12-31T23:00:00Z"}
			writeError(w, http.StatusBadRequest, badField(f), []FieldError{f})
			return
		}
		m.Until = &until
	}
	if err := h.cfg.Mutes.Set(r.Context(), m, h.cfg.Now()); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

func (h *Handler) deleteMute(w http.ResponseWriter, r *http.Request) {
	if !checkIDs(w, id{"client_id", r.PathValue("client_id"), mute.MaxClientIDLen},
		id{"conversation_id", r.PathValue("conversation_id"), mute.MaxConversationIDLen}) {
		return
	}
	h.noContent(w, r, func(ctx context.Context, app string) error {
		return h.cfg.Mutes.Delete(ctx, app, r.PathValue("client_id"), r.PathValue("conversation_id"))
	})
}

func (h *Handler) listMutes(w http.ResponseWriter, r *http.Request) {
	app, client, ok := h.clientQuery(w, r)
	if !ok {
		return
	}
	list, err := h.cfg.Mutes.List(r.Context(), app, client, h.cfg.Now())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if list == nil {
		list = []mute.Mute{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"mutes": list})
}

func (h *Handler) push(w http.ResponseWriter, r *http.Request) {
	body, ok := h.readBody(w, r)
	if !ok {
		return
	}
	job, err := pushjob.Decode(body)
	if err != nil {
		if fields, ok := fieldErrors(err); ok {
			writeError(w, http.StatusBadRequest, "invalid job", fields)
			return
		}
		writeError(w, http.StatusBadRequest, "malformed JSON: "+err.Error(), nil)
		return
	}
	job.Normalize()
	// Every mistake in one answer: the app's absence joins the job's own
	// field errors rather than waiting for them to be fixed first.
	var fields []FieldError
	if err := job.Validate(); err != nil {
		f, ok := fieldErrors(err)
		if !ok {
			h.fail(w, r, err)
			return
		}
		fields = f
	}
	if !h.apps[job.AppID] && !slices.ContainsFunc(fields, func(f FieldError) bool { return f.Field == "app_id" }) {
		fields = append(fields, FieldError{Field: "app_id", Rule: fmt.Sprintf("app %q is not configured", job.AppID)})
	}
	if len(fields) > 0 {
		writeError(w, http.StatusBadRequest, "invalid job", fields)
		return
	}
	id, err := h.cfg.Enqueuer.Enqueue(r.Context(), job)
	if errors.Is(err, pushjob.ErrDuplicate) {
		writeJSON(w, http.StatusConflict, errorBody{Error: "message " + job.MessageID + " was already enqueued", TaskID: id})
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"task_id": id, "message_id": job.MessageID})
}

// trace answers what became of a message: one row per device tried and per
// recipient no device was tried for (muted, no_device, expired).
func (h *Handler) trace(w http.ResponseWriter, r *http.Request) {
	app, ok := h.app(w, r.URL.Query().Get("app_id"))
	if !ok {
		return
	}
	if h.cfg.Traces == nil {
		writeError(w, http.StatusNotFound, "traces are not kept", nil)
		return
	}
	if !checkIDs(w, id{"message_id", r.PathValue("message_id"), pushjob.MaxMessageIDLen}) {
		return
	}
	rows, err := h.cfg.Traces.Trace(r.Context(), app, r.PathValue("message_id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if rows == nil {
		rows = []installations.Delivery{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"app_id": app, "message_id": r.PathValue("message_id"), "deliveries": rows})
}
