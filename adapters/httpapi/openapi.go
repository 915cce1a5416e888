package httpapi

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"sigs.k8s.io/yaml"
)

// specYAML is the API contract. Edit openapi.yaml, never a generated copy:
// /openapi.json is converted from it at first use.
//
//go:embed openapi.yaml
var specYAML []byte

var specJSON = sync.OnceValues(func() ([]byte, error) {
	b, err := yaml.YAMLToJSON(specYAML)
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml to JSON: %w", err)
	}
	return b, nil
})

// OpenAPIYAML returns the spec as written (a copy).
func OpenAPIYAML() []byte { return bytes.Clone(specYAML) }

// OpenAPIJSON returns the spec as JSON, as served at /openapi.json (a copy).
func OpenAPIJSON() ([]byte, error) {
	b, err := specJSON()
	return bytes.Clone(b), err
}

// LoadSpec parses the spec and validates it as an OpenAPI 3.1 document
// (kin-openapi, with JSON Schema 2020-12 for 3.1 schemas), examples and
// regular expressions included.
func LoadSpec(ctx context.Context) (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	loader.Context = ctx
	doc, err := loader.LoadFromData(specYAML)
	if err != nil {
		return nil, fmt.Errorf("load openapi.yaml: %w", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		return nil, fmt.Errorf("openapi.yaml declares openapi %q, want 3.1.x", doc.OpenAPI)
	}
	if err := doc.Validate(ctx, openapi3.EnableExamplesValidation(), openapi3.EnableSchemaPatternValidation()); err != nil {
		return nil, fmt.Errorf("validate openapi.yaml: %w", err)
	}
	return doc, nil
}

// SpecValidator checks requests and responses against the spec. It is safe
// for concurrent use.
type SpecValidator struct {
	doc    *openapi3.T
	router routers.Router
}

// NewSpecValidator loads the spec (LoadSpec) and builds its router.
func NewSpecValidator() (*SpecValidator, error) {
	// Loading is pure: it reads the embedded bytes only, so the context
	// bounds nothing and a request's would not outlive the call anyway.
	doc, err := LoadSpec(context.TODO())
	if err != nil {
		return nil, err
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi router: %w", err)
	}
	return &SpecValidator{doc: doc, router: router}, nil
}

// Doc returns the loaded spec (shared: do not modify).
func (v *SpecValidator) Doc() *openapi3.T { return v.doc }

func filterOptions() *openapi3filter.Options {
	o := &openapi3filter.Options{
		// The Server authenticates; the spec documents the scheme.
		AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
		MultiError:            true,
		SkipSettingDefaults:   true, // never rewrite the request body
		IncludeResponseStatus: true, // an undocumented status is a violation
	}
	// One line per violation, without kin-openapi's dump of the schema.
	o.WithCustomSchemaErrorFunc(func(se *openapi3.SchemaError) string {
		return fmt.Sprintf("%s at /%s: %s", se.SchemaField, strings.Join(se.JSONPointer(), "/"), se.Reason)
	})
	return o
}

// input finds r's route and prepares the request input; body is the request
// body (r.Body is not read).
func (v *SpecValidator) input(r *http.Request, body []byte) (*openapi3filter.RequestValidationInput, error) {
	rr := r.Clone(r.Context())
	rr.Body = io.NopCloser(bytes.NewReader(body))
	rr.ContentLength = int64(len(body))
	route, params, err := v.router.FindRoute(rr)
	if err != nil {
		return nil, fmt.Errorf("%s %s: not in the spec: %w", r.Method, r.URL.Path, err)
	}
	return &openapi3filter.RequestValidationInput{Request: rr, PathParams: params, Route: route, Options: filterOptions()}, nil
}

// ValidateRequest checks r, whose body is body, against its operation.
func (v *SpecValidator) ValidateRequest(ctx context.Context, r *http.Request, body []byte) error {
	in, err := v.input(r, body)
	if err != nil {
		return err
	}
	return openapi3filter.ValidateRequest(ctx, in)
}

// ValidateResponse checks a response (status, header, body) to r (whose body
// was reqBody) against its operation: the status must be documented, the
// headers and body must match.
func (v *SpecValidator) ValidateResponse(ctx context.Context, r *http.Request, reqBody []byte, status int, header http.Header, body []byte) error {
	in, err := v.input(r, reqBody)
	if err != nil {
		return err
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 status,
		Header:                 header,
		Options:                filterOptions(),
	}
	out.SetBodyBytes(body)
	return openapi3filter.ValidateResponse(ctx, out)
}

// checkRequest is the runtime (development) check: a violation becomes a
// problem naming the fields, 400 for shape (type, unknown member, bad
// parameter) and 422 for values (pattern, range, required, enum).
func (v *SpecValidator) checkRequest(r *http.Request, body []byte) error {
	err := v.ValidateRequest(r.Context(), r, body)
	if err == nil {
		return nil
	}
	var fields []FieldError
	code := CodeInvalid
	for _, e := range flatten(err) {
		fe, shape := specFieldError(e)
		if shape {
			code = CodeMalformed
		}
		if len(fields) < maxFieldErrors {
			fields = append(fields, fe)
		}
	}
	return &Error{Code: code, Message: "the request does not match the API specification", Fields: fields, Err: err}
}

// flatten unpacks kin-openapi's nested MultiErrors.
func flatten(err error) []error {
	if me, ok := err.(openapi3.MultiError); ok {
		var out []error
		for _, e := range me {
			out = append(out, flatten(e)...)
		}
		return out
	}
	var re *openapi3filter.RequestError
	if errors.As(err, &re) && re.Err != nil {
		var inner openapi3.MultiError
		if errors.As(re.Err, &inner) {
			var out []error
			for _, e := range inner {
				out = append(out, flatten(&openapi3filter.RequestError{Input: re.Input, Parameter: re.Parameter, RequestBody: re.RequestBody, Reason: re.Reason, Err: e})...)
			}
			return out
		}
	}
	return []error{err}
}

func specFieldError(err error) (FieldError, bool) {
	fe := FieldError{Field: "(request)", Code: "spec_violation", Message: err.Error()}
	shape := false
	var re *openapi3filter.RequestError
	if errors.As(err, &re) {
		fe.Message = re.Reason
		if re.Parameter != nil {
			fe.Field = re.Parameter.Name
			fe.Code = "invalid_parameter"
			shape = true
		} else if re.RequestBody != nil {
			fe.Field = "(body)"
		}
	}
	var se *openapi3.SchemaError
	if errors.As(err, &se) {
		if re == nil || re.Parameter == nil {
			var p Path
			for _, k := range se.JSONPointer() {
				if i, err := strconv.Atoi(k); err == nil {
					p = p.Index(i)
				} else {
					p = p.Key(k)
				}
			}
			if p != "" {
				fe.Field = string(p)
			}
		}
		if se.SchemaField != "" {
			fe.Code = strings.ToLower(se.SchemaField)
		}
		fe.Message = se.Reason
		switch se.SchemaField {
		case "type", "additionalProperties", "unevaluatedProperties":
			shape = true
		}
	}
	return fe, shape
}
