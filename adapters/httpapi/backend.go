package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/livecore/livecore/domain/app"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/financing"
	"github.com/livecore/livecore/domain/fulfillment"
	"github.com/livecore/livecore/domain/inventory"
	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/domain/order"
	"github.com/livecore/livecore/domain/payment"
)

// Backend is what the /v1 endpoints run on. With Config.Backend nil the
// Server has only its operational routes.
//
// The API only appends events (through App, so every command is decided
// against the folded aggregate, appended with its exact expected version and
// batched per hot stream) and reads them; it never calls Temporal. The saga
// dispatcher follows the log and starts the sagas.
type Backend struct {
	// App runs commands (required).
	App *app.Service
	// Events reads streams: histories, tenant checks, positions (required;
	// the store App writes to).
	Events event.StreamReader
	// Head reports the event store's head (required).
	Head event.HeadReader
	// Registry decodes events (required).
	Registry *event.Registry
	// Region stamps orders and event metadata (default "local").
	Region string
	// Tokens keeps the payment token of each checkout for the saga
	// (required).
	Tokens TokenStore
	// Drops keeps the commercial terms of live drops (price, window),
	// which the inventory aggregate does not hold (required).
	Drops DropStore
	// Positions, if set, is the tracker wrapping the store App appends to:
	// writes then learn their position without reading it back.
	Positions *PositionTracker
	// Placement, if set, homes new orders (multi-region deployments): it
	// returns the home of an order placed in market ("" when the request
	// names none), and the order's ID becomes home + "." + the usual ID,
	// so every region finds the order's owner from its ID
	// (regions.Topology.HomeOf). An error (another region owns the home:
	// see Config.MapError) refuses the request before anything is stored.
	Placement func(ctx context.Context, market string) (home string, err error)
	// Acknowledge, if set, runs after every write, with the position of
	// its last event (also for a replayed command), before the answer:
	// an error withholds the acknowledgement (sync durability across
	// regions: the write must reach Kafka first). Its error goes through
	// Config.MapError.
	Acknowledge func(ctx context.Context, position uint64) error
	// Audit serves /v1/audit/verify, journal, journal.csv and stream
	// state; nil leaves those routes out.
	Audit *Audit
}

func (b *Backend) validate() error {
	switch {
	case b.App == nil:
		return errors.New("httpapi: Backend.App is required")
	case b.Events == nil:
		return errors.New("httpapi: Backend.Events is required")
	case b.Head == nil:
		return errors.New("httpapi: Backend.Head is required")
	case b.Registry == nil:
		return errors.New("httpapi: Backend.Registry is required")
	case b.Tokens == nil:
		return errors.New("httpapi: Backend.Tokens is required")
	case b.Drops == nil:
		return errors.New("httpapi: Backend.Drops is required")
	}
	if b.Region == "" {
		b.Region = "local"
	}
	if b.Audit != nil {
		return b.Audit.validate()
	}
	return nil
}

// TokenStore keeps the payment token a checkout carried, per order, for the
// checkout saga (workflows' TokenSource reads it). Only tokens: the API
// refuses card numbers before anything is stored.
type TokenStore interface {
	// SavePaymentToken records tok for orderID (tenant-scoped); saving the
	// same again is a no-op, a new token replaces the old one (a customer
	// retrying checkout with another card).
	SavePaymentToken(ctx context.Context, tenant TenantID, orderID string, tok payment.Token) error
}

// DropTerms are what a live drop sells at and when; the inventory
// aggregate holds the units.
type DropTerms struct {
	ID       string
	Tenant   TenantID
	SKU      string
	Price    money.Money
	StartsAt time.Time
	EndsAt   time.Time
}

// DropStore keeps DropTerms.
type DropStore interface {
	// PutDrop stores d; storing the same ID again keeps the first (a
	// retried request).
	PutDrop(ctx context.Context, d DropTerms) error
	// GetDrop returns the drop of tenant with that ID; ErrDropNotFound if
	// none (or another tenant's).
	GetDrop(ctx context.Context, tenant TenantID, id string) (DropTerms, error)
}

// ErrDropNotFound: no such drop for the tenant.
var ErrDropNotFound = errors.New("drop not found")

// StockLocation is where the API keeps stock: the one location of a
// 'livecore dev' (workflows.DefaultLocations), where the checkout saga
// reserves.
var StockLocation = inventory.MustLocation("main")

// StockSKU is the SKU the domain knows a tenant's SKU by: "<tenant>/<sku>".
// Inventory stream IDs and order lines name SKUs only, so the tenant prefix
// is what keeps two tenants' stock apart (and what the checkout saga, which
// reserves an order's line SKUs, reserves). The API adds it on the way in
// and strips it on the way out; event histories show it as stored.
func StockSKU(tenant TenantID, sku string) string { return string(tenant) + "/" + sku }

// clientSKU strips the tenant prefix of a domain SKU.
func clientSKU(tenant TenantID, sku string) string {
	if rest, ok := strings.CutPrefix(sku, string(tenant)+"/"); ok {
		return rest
	}
	return sku
}

// newID derives a resource ID from a command ID: prefix + 26 base32
// characters (130 bits of the digest). Deterministic, so a retried request
// names the same resource; unguessable across tenants, since the command
// ID is scoped by tenant.
func newID(prefix, commandID string) string {
	sum := sha256.Sum256([]byte("livecore.resource-id.v1\x00" + commandID))
	return prefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:])[:26])
}

// command is the app.Command of a request: its ID is the request's
// Idempotency.CommandID (suffix distinguishes the streams of a request
// that writes several), and its metadata names the tenant, the key, the
// correlation ID and the command.
func (s *Server) command(r *http.Request, suffix string) app.Command {
	p, _ := PrincipalFrom(r.Context())
	idem, _ := IdempotencyFrom(r.Context())
	id := idem.CommandID
	if suffix != "" {
		id += "/" + suffix
	}
	return app.Command{ID: id, Metadata: event.Metadata{
		Tenant:        string(p.Tenant),
		CorrelationID: CorrelationID(r.Context()),
		CausationID:   id,
		Actor:         "api_key/" + p.KeyID + "/" + p.Role.String(),
		Region:        s.backend.Region,
	}}
}

// tenantCache remembers the tenant of streams already checked: a stream's
// first event, and so its tenant, never changes. Bounded: past max entries
// it starts over.
type tenantCache struct {
	mu  sync.Mutex
	m   map[string]string
	max int
}

func (c *tenantCache) get(stream string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.m[stream]
	return t, ok
}

func (c *tenantCache) put(stream, tenant string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= c.max {
		c.m = make(map[string]string, 1024)
	}
	c.m[stream] = tenant
}

// notFound is the one answer for a resource that does not exist or belongs
// to another tenant: the two are indistinguishable on purpose.
func notFound(what, _ string) error {
	return &Error{Code: CodeNotFound, Message: "no such " + what}
}

// ownStream checks that stream exists and belongs to the request's tenant;
// else the not-found error. It reads the stream's first event once per
// stream (then cached).
func (s *Server) ownStream(r *http.Request, stream string, nf error) error {
	p, _ := PrincipalFrom(r.Context())
	if t, ok := s.tenants.get(stream); ok {
		if t != string(p.Tenant) {
			return nf
		}
		return nil
	}
	envs, err := s.backend.Events.ReadStream(r.Context(), stream, 1, 1)
	if err != nil {
		return Internal(fmt.Errorf("read %s: %w", stream, err))
	}
	if len(envs) == 0 {
		return nf
	}
	s.tenants.put(stream, envs[0].Metadata.Tenant)
	if envs[0].Metadata.Tenant != string(p.Tenant) {
		return nf
	}
	return nil
}

// positionOf returns the global position of a stream's event at version v
// (the last event of a write).
func (s *Server) positionOf(ctx context.Context, stream string, v uint64) (uint64, error) {
	if v == 0 {
		return s.backend.Head.Head(ctx)
	}
	if t := s.backend.Positions; t != nil {
		if p, ok := t.take(stream, v); ok {
			return p, nil
		}
	}
	envs, err := s.backend.Events.ReadStream(ctx, stream, v, 1)
	if err != nil {
		return 0, fmt.Errorf("read %s@%d: %w", stream, v, err)
	}
	if len(envs) == 0 {
		return 0, fmt.Errorf("read %s@%d: event missing after append", stream, v)
	}
	return envs[0].Position, nil
}

// loadStream reads a whole stream of the request's tenant, folding it
// into agg: the strongly consistent read (source event_store). It returns
// the stream version and the position the answer reflects: the head read
// before the stream, so everything up to it is in the answer.
func (s *Server) loadStream(w http.ResponseWriter, r *http.Request, stream string, agg app.Aggregate, nf error) (version, pos uint64, err error) {
	ctx := r.Context()
	head, err := s.backend.Head.Head(ctx)
	if err != nil {
		return 0, 0, Internal(fmt.Errorf("head: %w", err))
	}
	if err := s.awaitHead(w, r, head); err != nil {
		return 0, 0, err
	}
	if min, _ := MinPosition(r); min > head {
		head = min
	}
	p, _ := PrincipalFrom(ctx)
	from := uint64(1)
	for {
		envs, err := s.backend.Events.ReadStream(ctx, stream, from, 500)
		if err != nil {
			return 0, 0, Internal(fmt.Errorf("read %s: %w", stream, err))
		}
		for i, env := range envs {
			if env.Version == 1 && env.Metadata.Tenant != string(p.Tenant) {
				return 0, 0, nf
			}
			ev, err := s.backend.Registry.DecodeEnvelope(env)
			if err != nil {
				return 0, 0, Internal(fmt.Errorf("decode %s@%d: %w", stream, env.Version, err))
			}
			agg.Apply(ev)
			version = env.Version
			if env.Position > pos {
				pos = envs[i].Position
			}
		}
		if len(envs) < 500 {
			break
		}
		from = version + 1
	}
	if version == 0 {
		return 0, 0, nf
	}
	return version, max(pos, head), nil
}

// awaitHead makes a strongly consistent read honour X-Livecore-Min-Position:
// the event store has everything up to its head, so only a position beyond
// the head (a write this server has not seen yet) is waited for, at most
// MinPositionWait, then 503.
func (s *Server) awaitHead(w http.ResponseWriter, r *http.Request, head uint64) error {
	min, err := MinPosition(r)
	if err != nil || min <= head {
		return err
	}
	hw, ok := s.backend.Head.(event.HeadWaiter)
	if !ok {
		return &Error{Code: CodeUnavailable, Message: fmt.Sprintf("position %d is beyond this server's log head %d", min, head)}
	}
	return s.awaitMinPosition(w, r, func(ctx context.Context, pos uint64) error {
		for h := head; h < pos; {
			var err error
			if h, err = hw.WaitHead(ctx, h); err != nil {
				return err
			}
		}
		return nil
	})
}

// consistency is the freshness member of every resource.
type consistency struct {
	Position uint64 `json:"position"`
	Source   string `json:"source"`
}

const (
	sourceEventStore = "event_store"
	sourceReadModel  = "read_model"
)

// written is the position header and member of a write's answer.
func written(w http.ResponseWriter, pos uint64) consistency {
	SetPosition(w, pos)
	return consistency{Position: pos, Source: sourceEventStore}
}

// execute runs one command through the application service and returns
// the position of its last event. Domain rejections come back classified
// by ErrorOf.
func execute[A app.Aggregate](s *Server, r *http.Request, stream string, newAgg func() A, cmd app.Command, decide func(A) ([]event.Event, error)) (app.Result, uint64, error) {
	res, err := app.Execute(r.Context(), s.backend.App, stream, newAgg, cmd, decide)
	if err != nil {
		return res, 0, err
	}
	pos, err := s.positionOf(r.Context(), stream, res.LastVersion)
	if err != nil {
		return res, 0, Internal(err)
	}
	if s.backend.Acknowledge != nil && pos > 0 {
		if err := s.backend.Acknowledge(r.Context(), pos); err != nil {
			return res, 0, err
		}
	}
	return res, pos, nil
}

// now is the server's clock in UTC, truncated to microseconds so times
// survive every store and JSON round trip unchanged.
func (s *Server) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }

// domainError classifies the rule errors of the domain packages. It is
// part of ErrorOf: rejections are 409 when the resource's state forbids
// the command, 422 when the input breaks a rule whatever the state.
func domainError(err error) *Error {
	conflict := func() *Error { return &Error{Code: CodeConflict, Message: publicMessage(err), Err: err} }
	invalid := func() *Error { return &Error{Code: CodeInvalid, Message: publicMessage(err), Err: err} }
	switch {
	case errors.Is(err, order.ErrIllegalTransition),
		errors.Is(err, order.ErrAlreadyShipped),
		errors.Is(err, order.ErrAlreadyPlaced),
		errors.Is(err, order.ErrQuantityExceedsOpen),
		errors.Is(err, order.ErrRefundExceedsPaid),
		errors.Is(err, order.ErrReturnExceedsShipped),
		errors.Is(err, order.ErrDuplicateShipment),
		errors.Is(err, order.ErrDuplicateRefund),
		errors.Is(err, order.ErrDuplicateReturn),
		errors.Is(err, order.ErrReturnAlreadyClosed),
		errors.Is(err, order.ErrReceiptExceedsReturn),
		errors.Is(err, inventory.ErrInsufficientStock),
		errors.Is(err, inventory.ErrDropAlreadyOpen),
		errors.Is(err, inventory.ErrDuplicateDrop),
		errors.Is(err, inventory.ErrNoOpenDrop),
		errors.Is(err, inventory.ErrDropSoldOut),
		errors.Is(err, inventory.ErrDropLimitReached),
		errors.Is(err, inventory.ErrReservationConflict),
		errors.Is(err, inventory.ErrReservationClosed),
		errors.Is(err, fulfillment.ErrIllegalTransition),
		errors.Is(err, fulfillment.ErrUnknownShipment),
		errors.Is(err, fulfillment.ErrNotSplit),
		errors.Is(err, fulfillment.ErrAlreadySplit),
		errors.Is(err, financing.ErrPlanClosed),
		errors.Is(err, financing.ErrPayoffMismatch),
		errors.Is(err, event.ErrIdempotencyConflict),
		errors.Is(err, event.ErrWrongExpectedVersion):
		return conflict()
	case errors.Is(err, order.ErrInvalidInput),
		errors.Is(err, order.ErrEmptyCart),
		errors.Is(err, order.ErrInvalidQuantity),
		errors.Is(err, order.ErrNegativePrice),
		errors.Is(err, order.ErrInvalidAdjustment),
		errors.Is(err, order.ErrMixedCurrencies),
		errors.Is(err, order.ErrNegativeTotal),
		errors.Is(err, order.ErrPlanMismatch),
		errors.Is(err, order.ErrUnknownLine),
		errors.Is(err, order.ErrDuplicateLine),
		errors.Is(err, inventory.ErrInvalidSKU),
		errors.Is(err, inventory.ErrInvalidInput),
		errors.Is(err, inventory.ErrInvalidQuantity),
		errors.Is(err, inventory.ErrInvalidLocation),
		errors.Is(err, payment.ErrInvalidToken),
		errors.Is(err, fulfillment.ErrInvalidInput),
		errors.Is(err, fulfillment.ErrInvalidQuantity):
		return invalid()
	case errors.Is(err, order.ErrNotPlaced):
		return &Error{Code: CodeNotFound, Message: "no such order", Err: err}
	case errors.Is(err, financing.ErrNoPlan):
		return &Error{Code: CodeNotFound, Message: "no such plan", Err: err}
	}
	return nil
}

// publicMessage is a domain error's text for the client: the outermost
// wrap names the command and the resource ID, which the client sent; no
// rule error carries free text (reasons, labels) the client did not
// already have. Long texts are cut.
func publicMessage(err error) string {
	msg := err.Error()
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	return msg
}

// parseLimit reads the limit query parameter (default 100, 1 to 1000).
func parseLimit(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 100, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1000 {
		return 0, &Error{Code: CodeMalformed, Message: "limit must be an integer from 1 to 1000",
			Fields: []FieldError{{Field: "limit", Code: "invalid_parameter", Message: "must be an integer from 1 to 1000"}}}
	}
	return n, nil
}

// parseAfter reads the after query parameter (a stream version, default 0).
func parseAfter(r *http.Request) (uint64, error) {
	v := r.URL.Query().Get("after")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 63)
	if err != nil {
		return 0, &Error{Code: CodeMalformed, Message: "after must be a non-negative integer",
			Fields: []FieldError{{Field: "after", Code: "invalid_parameter", Message: "must be a non-negative integer"}}}
	}
	return n, nil
}

// validID checks a path ID against the spec's ID pattern; anything else
// cannot name a resource, so it is not found (a card number is refused
// the same way, and the log shows it redacted).
func pathID(r *http.Request, name, what string) (string, error) {
	id := r.PathValue(name)
	ok := validResourceID(id) && !containsPAN(id)
	if !ok {
		return "", notFound(what, redactPAN(id))
	}
	return id, nil
}
