package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/livecore/livecore/domain/app"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/financing"
	"github.com/livecore/livecore/domain/inventory"
	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/domain/order"
)

// appQuery reads the application service's folded (and cached) state of a
// stream: strongly consistent, the way the next command will see it.
func appQuery[A app.Aggregate](s *Server, r *http.Request, stream string, newAgg func() A, read func(a A, version uint64)) error {
	return app.Query(r.Context(), s.backend.App, stream, newAgg, read)
}

type stockJSON struct {
	SKU         string      `json:"sku"`
	OnHand      int64       `json:"on_hand"`
	Reserved    int64       `json:"reserved"`
	Available   int64       `json:"available"`
	Version     uint64      `json:"version"`
	Consistency consistency `json:"consistency"`
}

type receiveStockRequest struct {
	Quantity  int64  `json:"quantity"`
	Reference string `json:"reference"`
}

// stockStream is the tenant's stream of a SKU; the SKU from the path is
// checked first (anything that is not a SKU is not found).
func stockStream(r *http.Request) (sku, domainSKU, stream string, err error) {
	sku = r.PathValue("sku")
	p, _ := PrincipalFrom(r.Context())
	domainSKU = StockSKU(p.Tenant, sku)
	if inventory.ValidateSKU(sku) != nil || inventory.ValidateSKU(domainSKU) != nil || containsPAN(sku) {
		return "", "", "", notFound("SKU", "")
	}
	return sku, domainSKU, inventory.StreamID(domainSKU, StockLocation), nil
}

func newItem(domainSKU string) func() *inventory.Item {
	return func() *inventory.Item { return inventory.NewItem(domainSKU, StockLocation) }
}

func (s *Server) stockView(r *http.Request, sku, domainSKU, stream string) (stockJSON, error) {
	var v stockJSON
	err := appQuery(s, r, stream, newItem(domainSKU), func(it *inventory.Item, version uint64) {
		v = stockJSON{SKU: sku, OnHand: it.OnHand(), Reserved: it.Reserved(), Available: it.Available(), Version: version}
	})
	if err != nil {
		return v, Internal(err)
	}
	return v, nil
}

func mustTenant(r *http.Request) TenantID {
	p, _ := PrincipalFrom(r.Context())
	return p.Tenant
}

func (s *Server) handleGetStock(w http.ResponseWriter, r *http.Request) error {
	sku, domainSKU, stream, err := stockStream(r)
	if err != nil {
		return err
	}
	head, err := s.backend.Head.Head(r.Context())
	if err != nil {
		return Internal(err)
	}
	if err := s.awaitHead(w, r, head); err != nil {
		return err
	}
	v, err := s.stockView(r, sku, domainSKU, stream)
	if err != nil {
		return err
	}
	if v.Version == 0 {
		return notFound("SKU", sku)
	}
	// The stream name holds the tenant's location, so no other tenant can
	// reach it; the metadata check is belt and braces.
	if err := s.ownStream(r, stream, notFound("SKU", sku)); err != nil {
		return err
	}
	pos, err := s.positionOf(r.Context(), stream, v.Version)
	if err != nil {
		return Internal(err)
	}
	if min, _ := MinPosition(r); min > pos {
		pos = min
	}
	pos = max(pos, head)
	SetPosition(w, pos)
	v.Consistency = consistency{Position: pos, Source: sourceEventStore}
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) handleReceiveStock(w http.ResponseWriter, r *http.Request) error {
	sku, domainSKU, stream, err := stockStream(r)
	if err != nil {
		var e *Error
		if errors.As(err, &e) && e.Code == CodeNotFound {
			return &Error{Code: CodeInvalid, Message: "the SKU in the path is not valid",
				Fields: []FieldError{{Field: "sku", Code: "invalid_value", Message: "must be 1-64 letters, digits and - _ . : /"}}}
		}
		return err
	}
	var req receiveStockRequest
	if err := s.decode(r, &req); err != nil {
		return err
	}
	var v Validator
	if req.Quantity < 1 || req.Quantity > 100_000_000 {
		v.Add("quantity", "out_of_range", "must be from 1 to 100000000")
	}
	checkLabel(&v, "reference", req.Reference, 100)
	if err := v.Err(); err != nil {
		return err
	}
	now := s.now()
	_, pos, err := execute(s, r, stream, newItem(domainSKU), s.command(r, ""), func(it *inventory.Item) ([]event.Event, error) {
		return it.Receive(req.Quantity, req.Reference, now)
	})
	if err != nil {
		return err
	}
	view, err := s.stockView(r, sku, domainSKU, stream)
	if err != nil {
		return err
	}
	view.Consistency = written(w, pos)
	return writeJSON(w, http.StatusOK, view)
}

// ReceiveStock records stock for a tenant outside HTTP (seeding the demo
// tenant): the same command a POST /v1/inventory/{sku} runs, under
// commandID (use a fixed one so a restart seeds nothing twice).
func ReceiveStock(ctx context.Context, svc *app.Service, region string, tenant TenantID, sku string, qty int64, ref, commandID string, now time.Time) error {
	dsku := StockSKU(tenant, sku)
	cmd := app.Command{ID: commandID, Metadata: event.Metadata{Tenant: string(tenant), CausationID: commandID, Actor: "system/seed", Region: region}}
	_, err := app.Execute(ctx, svc, inventory.StreamID(dsku, StockLocation), newItem(dsku), cmd, func(it *inventory.Item) ([]event.Event, error) {
		return it.Receive(qty, ref, now)
	})
	return err
}

// Live drops.

type openDropRequest struct {
	SKU              string    `json:"sku"`
	Quantity         int64     `json:"quantity"`
	Price            Money     `json:"price"`
	PerCustomerLimit *int64    `json:"per_customer_limit"`
	StartsAt         time.Time `json:"starts_at"`
	EndsAt           time.Time `json:"ends_at"`
}

type dropJSON struct {
	ID               string      `json:"id"`
	SKU              string      `json:"sku"`
	Quantity         int64       `json:"quantity"`
	Remaining        int64       `json:"remaining"`
	Price            Money       `json:"price"`
	PerCustomerLimit *int64      `json:"per_customer_limit"`
	Status           string      `json:"status"`
	StartsAt         time.Time   `json:"starts_at"`
	EndsAt           time.Time   `json:"ends_at"`
	Consistency      consistency `json:"consistency"`
}

type buyRequest struct {
	CustomerID string `json:"customer_id"`
	Quantity   int64  `json:"quantity"`
}

func dropStatus(now, starts, ends time.Time, open bool, remaining int64) string {
	switch {
	case !open || !now.Before(ends):
		return "closed"
	case remaining == 0:
		return "sold_out"
	case now.Before(starts):
		return "scheduled"
	}
	return "open"
}

// handleOpenDrop sets units aside for a live drop. Its terms (price,
// window) go to the DropStore, keyed by the drop ID the command derives,
// before the DropOpened event: a retry stores the same terms again and
// the application service replays the event.
func (s *Server) handleOpenDrop(w http.ResponseWriter, r *http.Request) error {
	var req openDropRequest
	if err := s.decode(r, &req); err != nil {
		return err
	}
	var v Validator
	tenant := mustTenant(r)
	checkSKU(&v, "sku", req.SKU, tenant)
	if req.Quantity < 1 || req.Quantity > 10_000_000 {
		v.Add("quantity", "out_of_range", "must be from 1 to 10000000")
	}
	price := v.MoneyInput("price", req.Price)
	if price.IsValid() && price.IsNegative() {
		v.Add("price.amount", "out_of_range", "must not be negative")
	}
	limit := req.Quantity
	if req.PerCustomerLimit != nil {
		if *req.PerCustomerLimit < 1 || *req.PerCustomerLimit > 1000 {
			v.Add("per_customer_limit", "out_of_range", "must be from 1 to 1000")
		}
		limit = *req.PerCustomerLimit
	}
	if req.StartsAt.IsZero() {
		v.Add("starts_at", "required", "is required")
	}
	if req.EndsAt.IsZero() {
		v.Add("ends_at", "required", "is required")
	} else if !req.EndsAt.After(req.StartsAt) {
		v.Add("ends_at", "out_of_range", "must be after starts_at")
	}
	if err := v.Err(); err != nil {
		return err
	}
	cmd := s.command(r, "")
	terms := DropTerms{
		ID: newID("drp_", cmd.ID), Tenant: tenant, SKU: req.SKU, Price: price,
		StartsAt: req.StartsAt.UTC().Truncate(time.Microsecond), EndsAt: req.EndsAt.UTC().Truncate(time.Microsecond),
	}
	if err := s.backend.Drops.PutDrop(r.Context(), terms); err != nil {
		return Internal(fmt.Errorf("store drop terms: %w", err))
	}
	dsku := StockSKU(tenant, req.SKU)
	now := s.now()
	_, pos, err := execute(s, r, inventory.StreamID(dsku, StockLocation), newItem(dsku), cmd, func(it *inventory.Item) ([]event.Event, error) {
		return it.OpenDrop(terms.ID, req.Quantity, limit, now)
	})
	if err != nil {
		return err
	}
	d, err := s.dropView(r, terms, now)
	if err != nil {
		return err
	}
	d.PerCustomerLimit = req.PerCustomerLimit
	d.Consistency = written(w, pos)
	w.Header().Set("Location", "/v1/drops/"+terms.ID)
	return writeJSON(w, http.StatusCreated, d)
}

func (s *Server) dropView(r *http.Request, t DropTerms, now time.Time) (dropJSON, error) {
	dsku := StockSKU(t.Tenant, t.SKU)
	var d dropJSON
	err := appQuery(s, r, inventory.StreamID(dsku, StockLocation), newItem(dsku), func(it *inventory.Item, _ uint64) {
		dv := it.Drop()
		open := dv.Open && dv.ID == t.ID
		remaining := int64(0)
		if open {
			remaining = dv.Remaining
		}
		d = dropJSON{ID: t.ID, SKU: t.SKU, Quantity: dv.Allocation, Remaining: remaining, Price: MoneyOf(t.Price),
			Status: dropStatus(now, t.StartsAt, t.EndsAt, open, remaining), StartsAt: t.StartsAt, EndsAt: t.EndsAt}
		if dv.ID == t.ID && dv.PerCustomerLimit != dv.Allocation {
			l := dv.PerCustomerLimit
			d.PerCustomerLimit = &l
		}
	})
	if err != nil {
		return d, Internal(err)
	}
	return d, nil
}

// handleBuy claims units of a drop and places their order. The claim runs
// on the SKU's hot stream through the application service, which batches
// every buyer queued on it into one decision round and one append; the
// order is placed next, on its own stream, under the same request's
// command ID (suffixed: one command ID per stream). A retry after a crash
// between the two replays the claim and places the order.
func (s *Server) handleBuy(w http.ResponseWriter, r *http.Request) error {
	dropID, err := pathID(r, "id", "drop")
	if err != nil {
		return err
	}
	tenant := mustTenant(r)
	terms, err := s.backend.Drops.GetDrop(r.Context(), tenant, dropID)
	if errors.Is(err, ErrDropNotFound) {
		return notFound("drop", dropID)
	}
	if err != nil {
		return Internal(err)
	}
	var req buyRequest
	if err := s.decode(r, &req); err != nil {
		return err
	}
	var v Validator
	checkID(&v, "customer_id", req.CustomerID)
	if req.Quantity < 1 || req.Quantity > 1000 {
		v.Add("quantity", "out_of_range", "must be from 1 to 1000")
	}
	if err := v.Err(); err != nil {
		return err
	}
	now := s.now()
	switch {
	case now.Before(terms.StartsAt):
		return &Error{Code: CodeConflict, Message: fmt.Sprintf("drop %s opens at %s", dropID, terms.StartsAt.Format(time.RFC3339))}
	case !now.Before(terms.EndsAt):
		return &Error{Code: CodeConflict, Message: fmt.Sprintf("drop %s closed at %s", dropID, terms.EndsAt.Format(time.RFC3339))}
	}
	cmd := s.command(r, "")
	orderID := newID("ord_", cmd.ID)
	dsku := StockSKU(tenant, terms.SKU)
	if _, err := app.Execute(r.Context(), s.backend.App, inventory.StreamID(dsku, StockLocation), newItem(dsku), cmd, func(it *inventory.Item) ([]event.Event, error) {
		return it.BuyFromDrop(dropID, req.CustomerID, orderID, req.Quantity, now)
	}); err != nil {
		return err
	}
	place := order.PlaceOrder{
		OrderID: orderID, CustomerID: req.CustomerID, Region: s.backend.Region, Currency: terms.Price.Currency(),
		Lines: []order.LineItem{{SKU: dsku, Quantity: req.Quantity, UnitPrice: terms.Price}},
	}
	_, pos, err := execute(s, r, order.StreamID(orderID), newOrder, s.command(r, "order"), func(o *order.Order) ([]event.Event, error) {
		return o.Place(place, now)
	})
	if err != nil {
		return err
	}
	return s.writeOrder(w, r, http.StatusCreated, orderID, pos, "/v1/orders/"+orderID)
}

// BNPL plans.

type installmentJSON struct {
	Number  int        `json:"number"`
	DueDate string     `json:"due_date"`
	Amount  Money      `json:"amount"`
	Status  string     `json:"status"`
	PaidAt  *time.Time `json:"paid_at"`
}

type planJSON struct {
	ID           string            `json:"id"`
	OrderID      string            `json:"order_id"`
	Kind         string            `json:"kind"`
	Status       string            `json:"status"`
	Principal    Money             `json:"principal"`
	Paid         Money             `json:"paid"`
	Outstanding  Money             `json:"outstanding"`
	Installments []installmentJSON `json:"installments"`
	Consistency  consistency       `json:"consistency"`
}

func (s *Server) handleGetPlan(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id", "plan")
	if err != nil {
		return err
	}
	var pl financing.Plan
	_, pos, err := s.loadStream(w, r, financing.StreamID(id), &pl, notFound("plan", id))
	if err != nil {
		return err
	}
	return s.writePlan(w, http.StatusOK, id, &pl, consistency{Position: pos, Source: sourceEventStore})
}

type payoffRequest struct {
	ExpectedAmount *Money `json:"expected_amount"`
}

// handlePayoff asks for an early payoff of a BNPL plan: it checks the
// plan can be paid off (and, with expected_amount, that the quote is
// exactly that), then appends plan.payoff_requested; the plan's schedule
// saga collects the quote from the customer's card.
func (s *Server) handlePayoff(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id", "plan")
	if err != nil {
		return err
	}
	var req payoffRequest
	if err := s.decode(r, &req); err != nil {
		return err
	}
	var v Validator
	var expected money.Money
	if req.ExpectedAmount != nil {
		expected = v.MoneyInput("expected_amount", *req.ExpectedAmount)
	}
	if err := v.Err(); err != nil {
		return err
	}
	var pl financing.Plan
	if _, _, err := s.loadStream(w, r, financing.StreamID(id), &pl, notFound("plan", id)); err != nil {
		return err
	}
	now := s.now()
	switch pl.Status() {
	case financing.StatusActive, financing.StatusDefaulted:
	default:
		return &Error{Code: CodeConflict, Message: "plan " + id + " is " + pl.Status().String() + ": nothing to pay off"}
	}
	if quote := pl.PayoffQuote(now); expected.IsValid() && !expected.Equal(quote) {
		return &Error{Code: CodeConflict, Message: fmt.Sprintf("the payoff quote is %s %s, not %s", quote.StringFixed(), quote.Currency().Code(), expected.StringFixed())}
	}
	cmd := s.command(r, "")
	reqID := newID("pay_", cmd.ID)
	_, pos, err := execute(s, r, PayoffStreamID(id), func() *payoffRequests { return &payoffRequests{} }, cmd, func(*payoffRequests) ([]event.Event, error) {
		return []event.Event{&PayoffRequested{PlanID: id, RequestID: reqID, At: now}}, nil
	})
	if err != nil {
		return err
	}
	return s.writePlan(w, http.StatusAccepted, id, &pl, written(w, pos))
}

func (s *Server) writePlan(w http.ResponseWriter, status int, id string, pl *financing.Plan, c consistency) error {
	now := s.now()
	cur := pl.Financed().Currency()
	if cur.IsZero() {
		return notFound("plan", id) // a plan stream with no decision yet
	}
	zero := money.Zero(cur)
	orZero := func(m money.Money) Money {
		if !m.IsValid() {
			return MoneyOf(zero)
		}
		return MoneyOf(m)
	}
	v := planJSON{
		ID: id, OrderID: pl.OrderID(), Kind: pl.Terms().Kind.String(), Status: pl.Status().String(),
		Principal: orZero(pl.Financed()), Paid: orZero(pl.Collected()), Outstanding: orZero(pl.Owed()),
		Installments: []installmentJSON{}, Consistency: c,
	}
	for _, in := range pl.Installments() {
		total, err := money.Sum(in.Principal, in.Interest, in.Fee)
		if err != nil {
			return Internal(err)
		}
		st := "scheduled"
		switch {
		case in.Unpaid().IsZero():
			st = "paid"
		case !in.DueAt.After(now):
			st = "pending"
		}
		v.Installments = append(v.Installments, installmentJSON{Number: in.Number, DueDate: in.DueAt.UTC().Format(time.DateOnly), Amount: MoneyOf(total), Status: st})
	}
	SetPosition(w, c.Position)
	return writeJSON(w, status, v)
}
