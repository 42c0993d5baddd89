package pushsim

import "net/http"

// fcmHandler serves the FCM HTTP v1 API and the OAuth2 token endpoint.
func (s *Sim) fcmHandler() http.Handler { return http.NotFoundHandler() }
