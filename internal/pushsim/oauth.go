package pushsim

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ListenerFCMOAuth names the OAuth2 token endpoint in counts. It shares the
// FCM listener but is counted apart, so that token fetches do not blur the
// numbers of sends.
const ListenerFCMOAuth = "fcm-oauth"

// OAuth2 scopes that allow sending FCM messages.
const (
	ScopeFirebaseMessaging = "https://www.googleapis.com/auth/firebase.messaging"
	ScopeCloudPlatform     = "https://www.googleapis.com/auth/cloud-platform"
)

// jwtBearerGrant is the grant type service accounts use (RFC 7523).
const jwtBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// Google's limits on a service account's assertion.
const (
	assertionMaxLifetime = 3600 // seconds between iat and exp
	assertionClockSkew   = 60   // seconds iat may be ahead of our clock
)

// OAuth2 error descriptions, as Google's token endpoint words them.
const (
	descBadSignature = "Invalid JWT Signature."
	descBadTimes     = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."
	descNoAccount    = "Invalid grant: account not found"
	descNoScope      = "Invalid OAuth scope or ID token audience provided."
)

// grant is an access token the token endpoint issued.
type grant struct {
	email   string
	project string
	scopes  []string
	// messaging is whether scopes allow FCM sends, decided once at issue
	// so that a send costs a map lookup and no string work.
	messaging bool
	expires   time.Time
}

// oauthTokenResponse is the token endpoint's success body.
type oauthTokenResponse struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	TokenType   string `json:"token_type"`
}

// oauthError is the token endpoint's error body (RFC 6749 section 5.2).
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// serveToken is Google's OAuth2 token endpoint (oauth2.googleapis.com/token)
// for the JWT-bearer grant that service accounts use.
func (s *Sim) serveToken(w http.ResponseWriter, r *http.Request) {
	now := s.cfg.Now()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.oauthReply(w, http.StatusMethodNotAllowed, oauthError{"invalid_request", "The token endpoint takes POST."})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		s.oauthReply(w, http.StatusBadRequest, oauthError{"invalid_request", "Could not read the form-encoded body: " + err.Error()})
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != jwtBearerGrant {
		// Google serves other grants too (refresh_token, token
		// exchange), but service accounts only ever use this one.
		s.oauthReply(w, http.StatusBadRequest, oauthError{"unsupported_grant_type", "Invalid grant_type: " + gt})
		return
	}
	assertion := r.PostForm.Get("assertion")
	if assertion == "" {
		s.oauthReply(w, http.StatusBadRequest, oauthError{"invalid_request", "Missing required parameter: assertion"})
		return
	}
	g, status, oe := s.verifyAssertion(assertion, now)
	if status != 0 {
		s.oauthReply(w, status, oe)
		return
	}
	token := newAccessToken()
	s.grants.Store(token, g)
	s.pruneGrants(now)
	w.Header().Set("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate")
	w.Header().Set("Pragma", "no-cache")
	s.oauthReply(w, http.StatusOK, oauthTokenResponse{
		AccessToken: token,
		ExpiresIn:   expiresIn(s.cfg.AccessTokenTTL),
		TokenType:   "Bearer",
	})
}

// expiresIn is the expires_in of a token that lives ttl: whole seconds,
// rounded up, and at least 1, because clients read 0 (or no expires_in) as
// a token that never expires; x/oauth2 does.
func expiresIn(ttl time.Duration) int64 {
	return max(int64(math.Ceil(ttl.Seconds())), 1)
}

// verifyAssertion checks a service account's signed JWT as Google does and
// returns the grant it earns, or the status and error to answer.
func (s *Sim) verifyAssertion(assertion string, now time.Time) (*grant, int, oauthError) {
	var head struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	var claims struct {
		Iss   string   `json:"iss"`
		Scope string   `json:"scope"`
		Aud   audience `json:"aud"`
		Iat   int64    `json:"iat"`
		Exp   int64    `json:"exp"`
	}
	signed, sig, err := jwtParts(assertion, &head, &claims)
	if err != nil {
		return nil, http.StatusBadRequest, oauthError{"invalid_grant", "Invalid JWT: " + err.Error()}
	}
	if head.Alg != "RS256" {
		// Service-account keys are RSA keys; Google checks the signature
		// with RS256 whatever the header says, so anything else fails
		// as a bad signature.
		return nil, http.StatusBadRequest, oauthError{"invalid_grant", descBadSignature}
	}
	sa := s.account(claims.Iss)
	if sa == nil {
		return nil, http.StatusBadRequest, oauthError{"invalid_grant", descNoAccount}
	}
	// The key id is not checked: the simulator keeps one key per account,
	// and a kid naming a deleted key would fail the signature anyway.
	if !verifyRS256(sa.public(), signed, sig) {
		return nil, http.StatusBadRequest, oauthError{"invalid_grant", descBadSignature}
	}
	if !s.goodAudience(claims.Aud) {
		return nil, http.StatusBadRequest, oauthError{"invalid_grant", "Invalid JWT: Failed audience check. The right audience is " + s.TokenURL()}
	}
	if claims.Iat == 0 || claims.Exp == 0 || claims.Iat > now.Unix()+assertionClockSkew ||
		claims.Exp <= now.Unix() || claims.Exp < claims.Iat || claims.Exp-claims.Iat > assertionMaxLifetime {
		return nil, http.StatusBadRequest, oauthError{"invalid_grant", descBadTimes}
	}
	scopes := strings.Fields(claims.Scope)
	if len(scopes) == 0 {
		return nil, http.StatusBadRequest, oauthError{"invalid_scope", descNoScope}
	}
	g := &grant{
		email:   sa.ClientEmail,
		project: sa.ProjectID,
		scopes:  scopes,
		expires: now.Add(s.cfg.AccessTokenTTL),
	}
	for _, sc := range scopes {
		if sc == ScopeFirebaseMessaging || sc == ScopeCloudPlatform {
			g.messaging = true
		}
	}
	return g, 0, oauthError{}
}

// goodAudience reports whether an assertion is addressed to this token
// endpoint. Any URL whose path ends in /token is accepted besides our own:
// Google itself answers to several token URLs, and clients may reach the
// simulator by a host name (localhost, a container name, a proxy) other than
// the address TokenURL reports, while their key file names the URL they use.
func (s *Sim) goodAudience(aud audience) bool {
	own := s.TokenURL()
	for _, a := range aud {
		if a == own || strings.HasSuffix(a, "/token") {
			return true
		}
	}
	return false
}

// audience is a JWT aud claim, which may be one string or a list.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*a = many
	return nil
}

// pruneGrants now and then forgets expired access tokens. Clients fetch a
// token about once an hour, so sweeping on a small share of issues keeps the
// map bounded without a sweeper goroutine or a per-send cost.
func (s *Sim) pruneGrants(now time.Time) {
	if mrand.N(64) != 0 {
		return
	}
	s.grants.Range(func(k, v any) bool {
		if !now.Before(v.(*grant).expires) {
			s.grants.Delete(k)
		}
		return true
	})
}

// newAccessToken makes an opaque token shaped like Google's service-account
// access tokens ("ya29.c." and about a hundred URL-safe characters).
func newAccessToken() string {
	var b [72]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return "ya29.c." + base64.RawURLEncoding.EncodeToString(b[:])
}

func (s *Sim) oauthReply(w http.ResponseWriter, status int, body any) {
	reason := ""
	if oe, ok := body.(oauthError); ok {
		reason = oe.Error
	}
	s.rec.count(ListenerFCMOAuth, status, reason)
	b, err := json.Marshal(body)
	if err != nil {
		// Both body types are plain structs of strings and numbers.
		panic(err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}
