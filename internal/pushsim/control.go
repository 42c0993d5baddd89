package pushsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"net/url"
	"strconv"
	"time"
)

// The control API is plain JSON over HTTP on its own port, so tests and
// benchmarks in any process or language can read what the listeners saw.
//
//	GET    /healthz
//	GET    /v1/info                 URLs, seed, keys and accounts
//	GET    /v1/counts               answers by listener, status and reason; connections; requests in flight
//	GET    /v1/receipts             every token that accepted a push (?brief=true: counts and times only)
//	GET    /v1/receipts/{token}     one token: count, times, headers, payload
//	POST   /v1/reset                forget counts, receipts, faults and in-flight peaks
//	GET    /v1/faults               rules and their hits
//	POST   /v1/faults               add a rule (a Fault as JSON)
//	DELETE /v1/faults               remove every rule
//	DELETE /v1/faults/{id}          remove one rule
//	GET    /v1/mint?provider=apns|fcm&fate=&env=&topic=&project=&n=&start=
//	GET    /debug/pprof/...         profiles, to show the simulator is not the bottleneck
func (s *Sim) controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /v1/info", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Info())
	})
	mux.HandleFunc("GET /v1/counts", func(w http.ResponseWriter, r *http.Request) {
		counts := s.Counts()
		var total int64
		for _, c := range counts {
			total += c.Count
		}
		writeJSON(w, http.StatusOK, countsReply{
			Total:           total,
			Counts:          counts,
			Connections:     s.Connections(),
			InFlight:        s.InFlight(),
			InFlightPeak:    s.InFlightPeak(),
			ReceiptsDropped: s.ReceiptsDropped(),
		})
	})
	mux.HandleFunc("GET /v1/receipts", func(w http.ResponseWriter, r *http.Request) {
		rcs := s.Receipts()
		// A benchmark of a million pushes wants counts and times, not a
		// gigabyte of payloads.
		if brief, _ := strconv.ParseBool(r.URL.Query().Get("brief")); brief {
			for i := range rcs {
				rcs[i].Headers, rcs[i].Payload = nil, nil
			}
		}
		writeJSON(w, http.StatusOK, receiptsReply{Receipts: rcs})
	})
	mux.HandleFunc("GET /v1/receipts/{token}", func(w http.ResponseWriter, r *http.Request) {
		rc, ok := s.Receipt(r.PathValue("token"))
		if !ok {
			writeJSON(w, http.StatusNotFound, errorReply{Error: "no push was accepted for this token"})
			return
		}
		writeJSON(w, http.StatusOK, rc)
	})
	mux.HandleFunc("POST /v1/reset", func(w http.ResponseWriter, r *http.Request) {
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /v1/faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, faultsReply{Faults: s.Faults()})
	})
	mux.HandleFunc("POST /v1/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Fault
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			writeJSON(w, http.StatusBadRequest, errorReply{Error: "fault: " + err.Error()})
			return
		}
		added, err := s.AddFault(f)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, errorReply{Error: err.Error()})
			return
		}
		writeJSON(w, http.StatusCreated, added)
	})
	mux.HandleFunc("DELETE /v1/faults", func(w http.ResponseWriter, r *http.Request) {
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /v1/faults/{id}", func(w http.ResponseWriter, r *http.Request) {
		if !s.RemoveFault(r.PathValue("id")) {
			writeJSON(w, http.StatusNotFound, errorReply{Error: "no fault with id " + strconv.Quote(r.PathValue("id"))})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /v1/mint", func(w http.ResponseWriter, r *http.Request) {
		tokens, err := s.mintQuery(r.URL.Query())
		if err != nil {
			writeJSON(w, http.StatusBadRequest, errorReply{Error: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, mintReply{Tokens: tokens})
	})
	return mux
}

// MaxMint is the most tokens one mint request returns.
const MaxMint = 100_000

func (s *Sim) mintQuery(q url.Values) ([]string, error) {
	fate := FateValid
	if v := q.Get("fate"); v != "" {
		f, err := ParseFate(v)
		if err != nil {
			return nil, fmt.Errorf("fate: %w", err)
		}
		fate = f
	}
	n, start := 1, uint64(0)
	if v := q.Get("n"); v != "" {
		i, err := strconv.Atoi(v)
		if err != nil || i < 1 || i > MaxMint {
			return nil, fmt.Errorf("n %q: want a whole number from 1 to %d", v, MaxMint)
		}
		n = i
	}
	if v := q.Get("start"); v != "" {
		i, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("start %q: want a whole number", v)
		}
		start = i
	}
	tokens := make([]string, n)
	switch q.Get("provider") {
	case "apns":
		env := Production
		if v := q.Get("env"); v != "" {
			e, err := ParseEnv(v)
			if err != nil {
				return nil, fmt.Errorf("env: %w", err)
			}
			env = e
		}
		topic := q.Get("topic")
		if topic == "" {
			return nil, errors.New("topic: required for provider apns (the app's bundle id)")
		}
		for i := range tokens {
			tokens[i] = s.minter.APNs(fate, env, topic, start+uint64(i))
		}
	case "fcm":
		project := q.Get("project")
		if project == "" {
			return nil, errors.New("project: required for provider fcm (the Firebase project id)")
		}
		for i := range tokens {
			tokens[i] = s.minter.FCM(fate, project, start+uint64(i))
		}
	default:
		return nil, fmt.Errorf("provider %q: want apns or fcm", q.Get("provider"))
	}
	return tokens, nil
}

// Info describes a running simulator.
type Info struct {
	Seed                string   `json:"seed"`
	DefaultFate         Fate     `json:"default_fate"`
	APNsProductionURL   string   `json:"apns_production_url"`
	APNsDevelopmentURL  string   `json:"apns_development_url"`
	FCMEndpoint         string   `json:"fcm_endpoint"`
	TokenURL            string   `json:"token_url"`
	ControlURL          string   `json:"control_url"`
	APNsKeyIDs          []string `json:"apns_key_ids"`
	ServiceAccountEmail []string `json:"service_accounts"`
}

// Info reports the simulator's addresses and what it trusts.
func (s *Sim) Info() Info {
	in := Info{
		Seed:               s.cfg.Seed,
		DefaultFate:        s.cfg.DefaultFate,
		APNsProductionURL:  s.APNsURL(Production),
		APNsDevelopmentURL: s.APNsURL(Development),
		FCMEndpoint:        s.FCMEndpoint(),
		TokenURL:           s.TokenURL(),
		ControlURL:         s.ControlURL(),
		APNsKeyIDs:         s.APNsKeys(),
	}
	for _, sa := range s.ServiceAccounts() {
		in.ServiceAccountEmail = append(in.ServiceAccountEmail, sa.ClientEmail)
	}
	return in
}

type countsReply struct {
	Total           int64            `json:"total"`
	Counts          []Count          `json:"counts"`
	Connections     map[string]int64 `json:"connections"`
	InFlight        map[string]int64 `json:"in_flight"`
	InFlightPeak    map[string]int64 `json:"in_flight_peak"`
	ReceiptsDropped int64            `json:"receipts_dropped"`
}

type receiptsReply struct {
	Receipts []Receipt `json:"receipts"`
}

type faultsReply struct {
	Faults []Fault `json:"faults"`
}

type mintReply struct {
	Tokens []string `json:"tokens"`
}

type errorReply struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// Control is a client of a simulator's control API, for tests and
// benchmarks that run the simulator in another process.
type Control struct {
	// URL is the control API's base URL, as Sim.ControlURL returns it.
	URL  string
	HTTP *http.Client
}

// NewControl returns a client for the control API at baseURL.
func NewControl(baseURL string) *Control {
	return &Control{URL: baseURL, HTTP: &http.Client{Timeout: 30 * time.Second}}
}

func (c *Control) do(ctx context.Context, method, path string, body, out any, okStatus ...int) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, fmt.Errorf("pushsim control: %s %s: encode request: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.URL+path, rd)
	if err != nil {
		return 0, fmt.Errorf("pushsim control: %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, fmt.Errorf("pushsim control: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, fmt.Errorf("pushsim control: %s %s: read answer: %w", method, path, err)
	}
	for _, st := range okStatus {
		if resp.StatusCode == st {
			if out != nil && len(b) > 0 {
				if err := json.Unmarshal(b, out); err != nil {
					return resp.StatusCode, fmt.Errorf("pushsim control: %s %s: decode answer: %w", method, path, err)
				}
			}
			return resp.StatusCode, nil
		}
	}
	var e errorReply
	json.Unmarshal(b, &e)
	return resp.StatusCode, fmt.Errorf("pushsim control: %s %s: %s: %s", method, path, resp.Status, e.Error)
}

// Counts reports the answers by listener, status and reason.
func (c *Control) Counts(ctx context.Context) ([]Count, error) {
	var r countsReply
	_, err := c.do(ctx, http.MethodGet, "/v1/counts", nil, &r, http.StatusOK)
	return r.Counts, err
}

// InFlight reports how many requests each push listener is handling now.
func (c *Control) InFlight(ctx context.Context) (map[string]int64, error) {
	var r countsReply
	_, err := c.do(ctx, http.MethodGet, "/v1/counts", nil, &r, http.StatusOK)
	return r.InFlight, err
}

// InFlightPeak reports the most requests each push listener has handled at
// once since the simulator started or was last reset (see Sim.InFlightPeak).
func (c *Control) InFlightPeak(ctx context.Context) (map[string]int64, error) {
	var r countsReply
	_, err := c.do(ctx, http.MethodGet, "/v1/counts", nil, &r, http.StatusOK)
	return r.InFlightPeak, err
}

// Receipt reports what token accepted; ok is false when it accepted nothing.
func (c *Control) Receipt(ctx context.Context, token string) (rc Receipt, ok bool, err error) {
	st, err := c.do(ctx, http.MethodGet, "/v1/receipts/"+url.PathEscape(token), nil, &rc, http.StatusOK, http.StatusNotFound)
	return rc, st == http.StatusOK && rc.Token != "", err
}

// Receipts reports every token that accepted a push.
func (c *Control) Receipts(ctx context.Context) ([]Receipt, error) {
	var r receiptsReply
	_, err := c.do(ctx, http.MethodGet, "/v1/receipts", nil, &r, http.StatusOK)
	return r.Receipts, err
}

// ReceiptTimes is Receipts without headers and payloads: each token's
// count and first and last receipt.
func (c *Control) ReceiptTimes(ctx context.Context) ([]Receipt, error) {
	var r receiptsReply
	_, err := c.do(ctx, http.MethodGet, "/v1/receipts?brief=true", nil, &r, http.StatusOK)
	return r.Receipts, err
}

// Reset forgets counts, receipts and faults, and restarts the in-flight
// peaks (see Sim.Reset).
func (c *Control) Reset(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodPost, "/v1/reset", nil, nil, http.StatusNoContent)
	return err
}

// AddFault adds a fault rule and returns it with its id.
func (c *Control) AddFault(ctx context.Context, f Fault) (Fault, error) {
	var out Fault
	_, err := c.do(ctx, http.MethodPost, "/v1/faults", f, &out, http.StatusCreated)
	return out, err
}

// Faults lists the rules with their hits.
func (c *Control) Faults(ctx context.Context) ([]Fault, error) {
	var r faultsReply
	_, err := c.do(ctx, http.MethodGet, "/v1/faults", nil, &r, http.StatusOK)
	return r.Faults, err
}

// Mint asks the simulator for tokens; query holds provider, fate, env,
// topic, project, n and start as /v1/mint takes them.
func (c *Control) Mint(ctx context.Context, query url.Values) ([]string, error) {
	var r mintReply
	_, err := c.do(ctx, http.MethodGet, "/v1/mint?"+query.Encode(), nil, &r, http.StatusOK)
	return r.Tokens, err
}
