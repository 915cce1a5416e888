package event

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Event is a domain event: a past-tense struct whose EventType returns its
// explicit, versioned, stable name ("order.placed.v1"). The name is what is
// persisted; it is never derived by reflection, so renaming a Go type does
// not change history.
type Event interface {
	EventType() string
}

// ErrUnknownEventType is returned when decoding a type name that is neither
// registered nor upcastable to a registered one.
var ErrUnknownEventType = errors.New("unknown event type")

// Upcaster turns the JSON of one event version into the JSON of the next.
// Old versions are upcast on read and never rewritten in the store.
type Upcaster func(data []byte) ([]byte, error)

type upcast struct {
	to string
	fn Upcaster
}

// Registry maps event type names to Go types and upcasters. It is built at
// wiring time and passed in; there is no package-global registry. A Registry
// is safe for concurrent reads once wiring is done; Register and
// RegisterUpcaster must not run concurrently with anything else.
type Registry struct {
	factories map[string]func() Event
	upcasters map[string]upcast
	unmarshal func(data []byte, v any) error
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{factories: map[string]func() Event{}, upcasters: map[string]upcast{}, unmarshal: json.Unmarshal}
}

// SetUnmarshal replaces the JSON decoder Decode uses (encoding/json's
// Unmarshal by default) with one that behaves identically, only faster;
// adapters/eventcodec provides one. A wiring-time choice, like Register.
func (r *Registry) SetUnmarshal(f func(data []byte, v any) error) {
	if f == nil {
		f = json.Unmarshal
	}
	r.unmarshal = f
}

// Register adds event types by factory (func() Event { return &OrderPlaced{} }).
// The factory must return a pointer so JSON can be decoded into it. It
// panics on a malformed or duplicate name: both are wiring bugs.
func (r *Registry) Register(factories ...func() Event) {
	for _, f := range factories {
		name := f().EventType()
		if _, _, err := ParseTypeName(name); err != nil {
			panic(fmt.Sprintf("event: register: %v", err))
		}
		if _, dup := r.factories[name]; dup {
			panic(fmt.Sprintf("event: register: %s registered twice", name))
		}
		if _, dup := r.upcasters[name]; dup {
			panic(fmt.Sprintf("event: register: %s is already upcast to a newer version", name))
		}
		r.factories[name] = f
	}
}

// RegisterUpcaster declares that events stored as from ("order.placed.v1")
// are read as to ("order.placed.v2") after fn converts their JSON. Chains
// (v1→v2→v3) are followed. It panics on malformed names, a version that does
// not increase, or a base name that differs: wiring bugs.
func (r *Registry) RegisterUpcaster(from, to string, fn Upcaster) {
	fb, fv, err1 := ParseTypeName(from)
	tb, tv, err2 := ParseTypeName(to)
	if err := errors.Join(err1, err2); err != nil {
		panic(fmt.Sprintf("event: upcaster: %v", err))
	}
	if fb != tb || tv <= fv {
		panic(fmt.Sprintf("event: upcaster %s -> %s must raise the version of one name", from, to))
	}
	if _, registered := r.factories[from]; registered {
		panic(fmt.Sprintf("event: upcaster: %s is registered as a current type", from))
	}
	r.upcasters[from] = upcast{to: to, fn: fn}
}

// Names lists the registered (current) type names, sorted.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.factories))
	for n := range r.factories {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Known reports whether name is registered or upcastable.
func (r *Registry) Known(name string) bool {
	_, ok := r.factories[name]
	_, up := r.upcasters[name]
	return ok || up
}

// Encode returns e's type name, schema version and JSON. It fails for an
// unregistered type, so nothing unknown is ever stored.
func (r *Registry) Encode(e Event) (typ string, schemaVersion int, data []byte, err error) {
	typ = e.EventType()
	if _, ok := r.factories[typ]; !ok {
		return "", 0, nil, fmt.Errorf("encode %s: %w", typ, ErrUnknownEventType)
	}
	_, schemaVersion, _ = ParseTypeName(typ)
	data, err = json.Marshal(e)
	if err != nil {
		return "", 0, nil, fmt.Errorf("encode %s: %w", typ, err)
	}
	return typ, schemaVersion, data, nil
}

// Propose encodes e as an event to append.
func (r *Registry) Propose(id string, e Event, md Metadata) (Proposed, error) {
	typ, v, data, err := r.Encode(e)
	if err != nil {
		return Proposed{}, err
	}
	return Proposed{ID: id, Type: typ, SchemaVersion: v, Data: data, Metadata: md}, nil
}

// Decode returns the event stored as typ with data, upcasting old versions
// to the registered one first.
func (r *Registry) Decode(typ string, data []byte) (Event, error) {
	for seen := 0; ; seen++ {
		if f, ok := r.factories[typ]; ok {
			e := f()
			if err := r.unmarshal(data, e); err != nil {
				return nil, fmt.Errorf("decode %s: %w", typ, err)
			}
			return e, nil
		}
		u, ok := r.upcasters[typ]
		if !ok || seen > 64 {
			return nil, fmt.Errorf("decode %s: %w", typ, ErrUnknownEventType)
		}
		var err error
		if data, err = u.fn(data); err != nil {
			return nil, fmt.Errorf("upcast %s to %s: %w", typ, u.to, err)
		}
		typ = u.to
	}
}

// DecodeEnvelope is Decode of a stored envelope.
func (r *Registry) DecodeEnvelope(e Envelope) (Event, error) { return r.Decode(e.Type, e.Data) }

// ParseTypeName splits "order.placed.v1" into ("order.placed", 1). A name is
// lower-case dot-separated segments of [a-z0-9_] ending in ".v" and a
// positive version.
func ParseTypeName(name string) (base string, version int, err error) {
	i := strings.LastIndex(name, ".v")
	if i <= 0 {
		return "", 0, fmt.Errorf("event type %q: want name.vN", name)
	}
	base = name[:i]
	version, convErr := strconv.Atoi(name[i+2:])
	if convErr != nil || version < 1 || strconv.Itoa(version) != name[i+2:] {
		return "", 0, fmt.Errorf("event type %q: version must be a positive integer", name)
	}
	for _, seg := range strings.Split(base, ".") {
		if seg == "" {
			return "", 0, fmt.Errorf("event type %q: empty segment", name)
		}
		for _, c := range seg {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
				return "", 0, fmt.Errorf("event type %q: segments are [a-z0-9_]", name)
			}
		}
	}
	return base, version, nil
}
