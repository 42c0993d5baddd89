package pushsim

import "net/http"

func (s *Sim) controlHandler() http.Handler { return http.NotFoundHandler() }
