package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// ProblemContentType is the media type of every error response (RFC 9457).
const ProblemContentType = "application/problem+json"

// DefaultProblemTypeBase prefixes a code to make a problem's "type" URI.
const DefaultProblemTypeBase = "https://livecore.dev/problems/"

// Problem is an RFC 9457 problem details object with livecore's extension
// members. Type, Title and Status follow from Code; Detail says what happened
// to this request; Instance is the request path; Errors lists field-level
// problems; RequestID ties the response to the server's log line.
type Problem struct {
	Type      string       `json:"type"`
	Title     string       `json:"title"`
	Status    int          `json:"status"`
	Detail    string       `json:"detail,omitempty"`
	Instance  string       `json:"instance,omitempty"`
	Code      Code         `json:"code"`
	Errors    []FieldError `json:"errors,omitempty"`
	RequestID string       `json:"request_id,omitempty"`
}

// internalDetail replaces the message of every CodeInternal error: nothing
// about the failure leaves the server but the request ID.
const internalDetail = "an unexpected error occurred; quote the request_id when reporting it"

// problemFor builds the problem for e. Internal errors keep their message to
// the log.
func (s *Server) problemFor(r *http.Request, e *Error) Problem {
	p := Problem{
		Type:     s.cfg.ProblemTypeBase + string(e.Code),
		Title:    e.Code.Title(),
		Status:   e.Code.Status(),
		Detail:   e.Message,
		Instance: redactPAN(r.URL.Path),
		Code:     e.Code,
		Errors:   e.Fields,
	}
	if e.Code == CodeInternal {
		p.Detail, p.Errors = internalDetail, nil
	}
	if info := infoFrom(r.Context()); info != nil {
		p.RequestID = info.requestID
	}
	return p
}

// writeProblem writes err as a problem response and records it for the
// request's log line.
func (s *Server) writeProblem(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if s.cfg.MapError != nil {
		e = s.cfg.MapError(r, err)
	}
	if e == nil {
		e = ErrorOf(err)
	}
	if info := infoFrom(r.Context()); info != nil {
		info.err = e
	}
	p := s.problemFor(r, e)
	b, mErr := json.Marshal(p)
	if mErr != nil { // unreachable: Problem holds only strings and ints
		b = []byte(`{"type":"` + s.cfg.ProblemTypeBase + `internal","title":"Internal error","status":500,"code":"internal"}`)
		p.Status = http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", ProblemContentType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Cache-Control", "no-store")
	if e.Location != "" {
		h.Set("Location", e.Location)
	}
	if e.Code == CodeUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="livecore"`)
	}
	w.WriteHeader(p.Status)
	_, _ = w.Write(b)
}
