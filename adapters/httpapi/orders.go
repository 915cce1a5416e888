package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/fulfillment"
	"github.com/livecore/livecore/domain/inventory"
	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/domain/order"
	"github.com/livecore/livecore/domain/payment"
)

// routes registers the /v1 endpoints.
func (s *Server) routes() {
	s.handle("POST /v1/orders", s.handleCreateOrder, RoleCheckout)
	s.handle("GET /v1/orders/{id}", s.handleGetOrder, RoleCheckout, RoleFinance, RoleOps)
	s.handle("POST /v1/orders/{id}/checkout", s.handleCheckout, RoleCheckout)
	s.handle("POST /v1/orders/{id}/cancel", s.handleCancel, RoleCheckout)
	s.handle("POST /v1/orders/{id}/shipments", s.handleShipment, RoleOps)
	s.handle("POST /v1/orders/{id}/refunds", s.handleRefund, RoleCheckout, RoleFinance)
	s.handle("POST /v1/orders/{id}/returns", s.handleReturn, RoleCheckout)
	s.handle("POST /v1/orders/{id}/returns/{return_id}/received", s.handleReturnReceived, RoleOps)
	s.handle("GET /v1/orders/{id}/events", s.handleOrderEvents, RoleFinance, RoleOps)
	s.handle("GET /v1/plans/{id}", s.handleGetPlan, RoleCheckout, RoleFinance)
	s.handle("POST /v1/plans/{id}/payoff", s.handlePayoff, RoleCheckout)
	s.handle("GET /v1/inventory/{sku}", s.handleGetStock, RoleOps, RoleCheckout)
	s.handle("POST /v1/inventory/{sku}", s.handleReceiveStock, RoleOps)
	s.handle("POST /v1/drops", s.handleOpenDrop, RoleCheckout, RoleOps)
	s.handle("POST /v1/drops/{id}/buy", s.handleBuy, RoleCheckout)
	s.handle("GET /v1/audit/streams/{stream}/events", s.handleStreamEvents, RoleFinance)
	if s.backend.Audit != nil {
		s.auditRoutes()
	}
}

func newOrder() *order.Order { return &order.Order{} }

// Wire types of the order endpoints.

type itemInput struct {
	SKU       string `json:"sku"`
	Quantity  int64  `json:"quantity"`
	UnitPrice Money  `json:"unit_price"`
}

type adjustmentInput struct {
	Label  string `json:"label"`
	Amount Money  `json:"amount"`
}

type paymentInput struct {
	Method    string  `json:"method"`
	CardToken *string `json:"card_token"`
	Plan      *string `json:"plan"`
}

type createOrderRequest struct {
	CustomerID *string           `json:"customer_id"`
	Market     *string           `json:"market"`
	Currency   string            `json:"currency"`
	Items      []itemInput       `json:"items"`
	Discounts  []adjustmentInput `json:"discounts"`
	Taxes      []adjustmentInput `json:"taxes"`
	Payment    *paymentInput     `json:"payment"`
}

type checkoutRequest struct {
	Payment *paymentInput `json:"payment"`
}

type itemQuantity struct {
	Line     int   `json:"line"`
	Quantity int64 `json:"quantity"`
}

type cancelRequest struct {
	Reason string         `json:"reason"`
	Items  []itemQuantity `json:"items"`
}

type shipmentRequest struct {
	ShipmentID     string         `json:"shipment_id"`
	Status         string         `json:"status"`
	Items          []itemQuantity `json:"items"`
	Carrier        *string        `json:"carrier"`
	TrackingNumber *string        `json:"tracking_number"`
	FailureReason  *string        `json:"failure_reason"`
	OccurredAt     time.Time      `json:"occurred_at"`
}

type refundRequest struct {
	Amount Money  `json:"amount"`
	Reason string `json:"reason"`
}

type returnRequest struct {
	Items  []itemQuantity `json:"items"`
	Reason string         `json:"reason"`
}

type orderItemJSON struct {
	Line              int    `json:"line"`
	SKU               string `json:"sku"`
	Quantity          int64  `json:"quantity"`
	UnitPrice         Money  `json:"unit_price"`
	Amount            Money  `json:"amount"`
	FulfilledQuantity int64  `json:"fulfilled_quantity"`
	CancelledQuantity int64  `json:"cancelled_quantity"`
	ReturnedQuantity  int64  `json:"returned_quantity"`
}

type adjustmentJSON struct {
	Label  string `json:"label"`
	Amount Money  `json:"amount"`
}

type paymentJSON struct {
	Method     string  `json:"method"`
	PlanKind   *string `json:"plan_kind"`
	PlanID     *string `json:"plan_id"`
	Authorized Money   `json:"authorized"`
	Captured   Money   `json:"captured"`
	Refunded   Money   `json:"refunded"`
}

// orderShipment is a parcel the fulfillment saga planned for the order.
type orderShipment struct {
	ID             string         `json:"id"`
	Status         string         `json:"status"`
	Items          []itemQuantity `json:"items"`
	Carrier        *string        `json:"carrier"`
	TrackingNumber *string        `json:"tracking_number"`
}

type orderJSON struct {
	ID            string           `json:"id"`
	CustomerID    *string          `json:"customer_id"`
	Status        string           `json:"status"`
	Currency      string           `json:"currency"`
	Items         []orderItemJSON  `json:"items"`
	Discounts     []adjustmentJSON `json:"discounts"`
	Taxes         []adjustmentJSON `json:"taxes"`
	Subtotal      Money            `json:"subtotal"`
	DiscountTotal Money            `json:"discount_total"`
	TaxTotal      Money            `json:"tax_total"`
	Total         Money            `json:"total"`
	Payment       *paymentJSON     `json:"payment"`
	Shipments     []orderShipment  `json:"shipments"`
	CreatedAt     time.Time        `json:"created_at"`
	UpdatedAt     time.Time        `json:"updated_at"`
	Version       uint64           `json:"version"`
	Consistency   consistency      `json:"consistency"`
}

// guestCustomer is the customer of an order placed without customer_id.
const guestCustomer = "guest"

func orderView(tenant TenantID, o *order.Order, version uint64, c consistency) orderJSON {
	v := orderJSON{
		ID: o.ID(), Status: o.Status().String(), Currency: o.Currency().Code(),
		Items: []orderItemJSON{}, Discounts: []adjustmentJSON{}, Taxes: []adjustmentJSON{},
		Subtotal: MoneyOf(o.Subtotal()), DiscountTotal: MoneyOf(o.DiscountTotal()),
		TaxTotal: MoneyOf(o.TaxTotal()), Total: MoneyOf(o.Total()),
		CreatedAt: o.PlacedAt().UTC(), UpdatedAt: o.UpdatedAt().UTC(),
		Version: version, Consistency: c,
	}
	if cid := o.CustomerID(); cid != guestCustomer {
		v.CustomerID = &cid
	}
	for _, l := range o.Lines() {
		v.Items = append(v.Items, orderItemJSON{
			Line: l.No, SKU: clientSKU(tenant, l.SKU), Quantity: l.Quantity, UnitPrice: MoneyOf(l.UnitPrice), Amount: MoneyOf(l.Amount),
			FulfilledQuantity: l.Fulfilled, CancelledQuantity: l.Cancelled, ReturnedQuantity: l.Returned,
		})
	}
	for _, a := range o.Discounts() {
		v.Discounts = append(v.Discounts, adjustmentJSON{Label: a.Label, Amount: MoneyOf(a.Amount)})
	}
	for _, a := range o.Taxes() {
		v.Taxes = append(v.Taxes, adjustmentJSON{Label: a.Label, Amount: MoneyOf(a.Amount)})
	}
	if m := o.PaymentMethod(); !m.IsZero() {
		zero := MoneyOf(money.Zero(o.Currency()))
		p := &paymentJSON{Method: m.String(), Authorized: MoneyOf(o.Paid()), Captured: zero, Refunded: MoneyOf(o.Refunded())}
		if k := o.PlanKind(); !k.IsZero() {
			// The checkout saga opens the plan under the order's ID.
			ks, id := k.String(), o.ID()
			p.PlanKind, p.PlanID = &ks, &id
		}
		v.Payment = p
	}
	return v
}

// payment is a validated payment choice.
type paymentChoice struct {
	method order.PaymentMethod
	plan   order.PlanKind
	token  payment.Token
}

func checkPayment(v *Validator, p Path, in *paymentInput) paymentChoice {
	var c paymentChoice
	if in == nil {
		v.Add(p, "required", "is required")
		return c
	}
	m, err := order.ParsePaymentMethod(in.Method)
	if err != nil {
		v.Add(p.Key("method"), "invalid_value", `must be "card" or "bnpl"`)
		return c
	}
	c.method = m
	switch m {
	case order.MethodCard:
		if in.Plan != nil {
			v.Add(p.Key("plan"), "not_allowed", "is only for bnpl")
		}
		if in.CardToken == nil {
			v.Add(p.Key("card_token"), "required", "is required for card")
			return c
		}
		tok, err := payment.ParseToken(*in.CardToken)
		if err != nil {
			v.Add(p.Key("card_token"), "invalid_token", "must be a payment token (tok_ followed by a-z, 0-9 and _), never a card number")
			return c
		}
		c.token = tok
	case order.MethodBNPL:
		// The card the plan's installments are collected from (the first
		// one at checkout).
		if in.CardToken == nil {
			v.Add(p.Key("card_token"), "required", "is required for bnpl: the card the installments are collected from")
		} else if tok, err := payment.ParseToken(*in.CardToken); err != nil {
			v.Add(p.Key("card_token"), "invalid_token", "must be a payment token (tok_ followed by a-z, 0-9 and _), never a card number")
		} else {
			c.token = tok
		}
		if in.Plan == nil {
			v.Add(p.Key("plan"), "required", "is required for bnpl")
			return c
		}
		k, err := order.ParsePlanKind(*in.Plan)
		if err != nil {
			v.Add(p.Key("plan"), "invalid_value", "must be one of pay_in_4, monthly_3, monthly_6, monthly_12")
			return c
		}
		c.plan = k
	}
	return c
}

// saveToken stores a card checkout's token for the saga, before the event
// that makes the saga look for it is appended.
func (s *Server) saveToken(r *http.Request, orderID string, c paymentChoice) error {
	if c.token.IsZero() {
		return nil
	}
	p, _ := PrincipalFrom(r.Context())
	if err := s.backend.Tokens.SavePaymentToken(r.Context(), p.Tenant, orderID, c.token); err != nil {
		return Internal(fmt.Errorf("save payment token: %w", err))
	}
	return nil
}

// checkSKU checks a client SKU: the domain's SKU is StockSKU (tenant
// prefixed), which must fit the domain's 64 bytes too.
func checkSKU(v *Validator, p Path, sku string, tenant TenantID) {
	if inventory.ValidateSKU(sku) != nil || inventory.ValidateSKU(StockSKU(tenant, sku)) != nil {
		v.Add(p, "invalid_value", fmt.Sprintf("must be letters, digits and - _ . : /, at most %d characters", 63-len(tenant)))
	}
}

func checkLabel(v *Validator, p Path, s string, maxLen int) {
	if v.Required(s, p) && len(s) > maxLen {
		v.Add(p, "too_long", fmt.Sprintf("must be at most %d characters", maxLen))
	}
}

func checkID(v *Validator, p Path, s string) {
	if !validResourceID(s) {
		v.Add(p, "invalid_value", "must be 1-64 letters, digits, _, - and . (not first)")
	}
}

// validResourceID: 1-64 of [A-Za-z0-9_.-], not starting with "." (the spec's ID).
// A dot separates a multi-region order's home from the rest ("eu.ord_...").
func validResourceID(s string) bool {
	ok := len(s) >= 1 && len(s) <= 64 && s[0] != '.'
	for i := 0; ok && i < len(s); i++ {
		c := s[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
	}
	return ok
}

func (s *Server) handleCreateOrder(w http.ResponseWriter, r *http.Request) error {
	var req createOrderRequest
	if err := s.decode(r, &req); err != nil {
		return err
	}
	var v Validator
	cur, err := money.ParseCurrency(req.Currency)
	if err != nil {
		v.Add("currency", "unknown_currency", "must be an ISO 4217 currency code")
	}
	customer := guestCustomer
	if req.CustomerID != nil {
		checkID(&v, "customer_id", *req.CustomerID)
		customer = *req.CustomerID
	}
	market := ""
	if req.Market != nil {
		checkID(&v, "market", *req.Market)
		market = *req.Market
	}
	if n := len(req.Items); n == 0 || n > 100 {
		v.Add("items", "invalid_length", "must have 1 to 100 items")
	}
	inCur := func(p Path, m money.Money) {
		if m.IsValid() && !cur.IsZero() && m.Currency() != cur {
			v.Add(p.Key("currency"), "currency_mismatch", "must be the order's currency "+cur.Code())
		}
	}
	lines := make([]order.LineItem, 0, len(req.Items))
	for i, it := range req.Items {
		p := Path("items").Index(i)
		checkSKU(&v, p.Key("sku"), it.SKU, mustTenant(r))
		if it.Quantity < 1 || it.Quantity > 100_000 {
			v.Add(p.Key("quantity"), "out_of_range", "must be from 1 to 100000")
		}
		price := v.MoneyInput(p.Key("unit_price"), it.UnitPrice)
		if price.IsNegative() {
			v.Add(p.Key("unit_price").Key("amount"), "negative", "must not be negative")
		}
		inCur(p.Key("unit_price"), price)
		lines = append(lines, order.LineItem{SKU: StockSKU(mustTenant(r), it.SKU), Quantity: it.Quantity, UnitPrice: price})
	}
	adjustments := func(name Path, in []adjustmentInput, positive bool) []order.Adjustment {
		if len(in) > 20 {
			v.Add(name, "invalid_length", "must have at most 20 entries")
		}
		out := make([]order.Adjustment, 0, len(in))
		for i, a := range in {
			p := name.Index(i)
			checkLabel(&v, p.Key("label"), a.Label, 100)
			m := v.MoneyInput(p.Key("amount"), a.Amount)
			if m.IsValid() && (m.IsNegative() || positive && m.IsZero()) {
				v.Add(p.Key("amount").Key("amount"), "out_of_range", "must be positive")
			}
			inCur(p.Key("amount"), m)
			out = append(out, order.Adjustment{Label: a.Label, Amount: m})
		}
		return out
	}
	discounts := adjustments("discounts", req.Discounts, true)
	taxes := adjustments("taxes", req.Taxes, false)
	var pay paymentChoice
	if req.Payment != nil {
		pay = checkPayment(&v, "payment", req.Payment)
	}
	if err := v.Err(); err != nil {
		return err
	}

	cmd := s.command(r, "")
	// The order's ID derives from the command's: its stream is new unless
	// this is a retry (the service then reads it and replays).
	cmd.Creates = true
	id := newID("ord_", cmd.ID)
	if s.backend.Placement != nil {
		home, err := s.backend.Placement(r.Context(), market)
		if err != nil {
			return err
		}
		id = home + "." + id
	}
	if err := s.saveToken(r, id, pay); err != nil {
		return err
	}
	now := s.now()
	place := order.PlaceOrder{OrderID: id, CustomerID: customer, Region: s.backend.Region, Currency: cur, Lines: lines, Discounts: discounts, Taxes: taxes}
	_, pos, err := execute(s, r, order.StreamID(id), newOrder, cmd, func(o *order.Order) ([]event.Event, error) {
		evs, err := o.Place(place, now)
		if err != nil || pay.method.IsZero() {
			return evs, err
		}
		// Place and check out in one decision: fold the placement into a
		// scratch order (decisions never change the aggregate they get).
		var tmp order.Order
		for _, e := range evs {
			tmp.Apply(e)
		}
		more, err := tmp.StartCheckout(pay.method, pay.plan, now)
		return append(evs, more...), err
	})
	if err != nil {
		return err
	}
	return s.writeOrder(w, r, http.StatusCreated, id, pos, "/v1/orders/"+id)
}

// writeOrder answers a write with the order as the application service
// has it after the write (strongly consistent).
func (s *Server) writeOrder(w http.ResponseWriter, r *http.Request, status int, id string, pos uint64, location string) error {
	var view orderJSON
	err := appQuery(s, r, order.StreamID(id), newOrder, func(o *order.Order, version uint64) {
		view = orderView(mustTenant(r), o, version, consistency{})
	})
	if err != nil {
		return Internal(err)
	}
	if err := s.addPayment(r, &view); err != nil {
		return err
	}
	if err := s.addShipments(r, &view); err != nil {
		return err
	}
	view.Consistency = written(w, pos)
	if location != "" {
		w.Header().Set("Location", location)
	}
	return writeJSON(w, status, view)
}

func (s *Server) handleGetOrder(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id", "order")
	if err != nil {
		return err
	}
	var o order.Order
	version, pos, err := s.loadStream(w, r, order.StreamID(id), &o, notFound("order", id))
	if err != nil {
		return err
	}
	view := orderView(mustTenant(r), &o, version, consistency{Position: pos, Source: sourceEventStore})
	if err := s.addPayment(r, &view); err != nil {
		return err
	}
	if err := s.addShipments(r, &view); err != nil {
		return err
	}
	SetPosition(w, pos)
	return writeJSON(w, http.StatusOK, view)
}

// unconfirmed reports whether an order in status st cannot have a payment
// hold or shipments yet (reading their empty streams would cost a store
// read and a cache entry each).
func unconfirmed(st string) bool {
	return st == order.StatusPlaced.String() || st == order.StatusCheckoutStarted.String()
}

// addShipments lists the parcels the fulfillment saga planned (none before
// the order is confirmed).
func (s *Server) addShipments(r *http.Request, v *orderJSON) error {
	v.Shipments = []orderShipment{}
	if unconfirmed(v.Status) {
		return nil // no fulfillment before confirmation: skip the read
	}
	err := appQuery(s, r, fulfillment.StreamID(v.ID), newFulfillment, func(f *fulfillment.Fulfillment, _ uint64) {
		for _, sh := range f.Shipments() {
			os := orderShipment{ID: sh.ID, Status: sh.Status.String(), Items: []itemQuantity{}}
			for _, l := range sh.Lines {
				os.Items = append(os.Items, itemQuantity{Line: l.Line, Quantity: l.Quantity})
			}
			if sh.Carrier != "" {
				c := sh.Carrier
				os.Carrier = &c
			}
			if sh.TrackingNumber != "" {
				t := sh.TrackingNumber
				os.TrackingNumber = &t
			}
			v.Shipments = append(v.Shipments, os)
		}
	})
	if err != nil {
		return Internal(err)
	}
	return nil
}

// addPayment fills the order's payment amounts from its payment (the
// checkout saga's payment ID is the order ID): authorized, captured and
// refunded as the provider calls recorded them.
func (s *Server) addPayment(r *http.Request, v *orderJSON) error {
	if v.Payment == nil || unconfirmed(v.Status) {
		return nil // amounts show from confirmation on
	}
	err := appQuery(s, r, payment.StreamID(v.ID), func() *payment.Payment { return &payment.Payment{} }, func(p *payment.Payment, version uint64) {
		if version == 0 || !p.Authorized().IsValid() {
			return
		}
		v.Payment.Authorized, v.Payment.Captured, v.Payment.Refunded = MoneyOf(p.Authorized()), MoneyOf(p.Captured()), MoneyOf(p.Refunded())
	})
	if err != nil {
		return Internal(err)
	}
	return nil
}

// ownOrder reads the order ID from the path and checks the order is the
// tenant's.
func (s *Server) ownOrder(r *http.Request) (string, error) {
	id, err := pathID(r, "id", "order")
	if err != nil {
		return "", err
	}
	return id, s.ownStream(r, order.StreamID(id), notFound("order", id))
}

func (s *Server) handleCheckout(w http.ResponseWriter, r *http.Request) error {
	id, err := s.ownOrder(r)
	if err != nil {
		return err
	}
	var req checkoutRequest
	if err := s.decode(r, &req); err != nil {
		return err
	}
	var v Validator
	pay := checkPayment(&v, "payment", req.Payment)
	if err := v.Err(); err != nil {
		return err
	}
	if err := s.saveToken(r, id, pay); err != nil {
		return err
	}
	now := s.now()
	_, pos, err := execute(s, r, order.StreamID(id), newOrder, s.command(r, ""), func(o *order.Order) ([]event.Event, error) {
		return o.StartCheckout(pay.method, pay.plan, now)
	})
	if err != nil {
		return err
	}
	return s.writeOrder(w, r, http.StatusAccepted, id, pos, "")
}

func toLines(v *Validator, p Path, in []itemQuantity, required bool) []order.LineQuantity {
	if required && len(in) == 0 {
		v.Add(p, "required", "must list at least one item")
	}
	if len(in) > 100 {
		v.Add(p, "invalid_length", "must have at most 100 items")
	}
	out := make([]order.LineQuantity, 0, len(in))
	for i, lq := range in {
		if lq.Line < 1 {
			v.Add(p.Index(i).Key("line"), "out_of_range", "must be at least 1")
		}
		if lq.Quantity < 1 {
			v.Add(p.Index(i).Key("quantity"), "out_of_range", "must be at least 1")
		}
		out = append(out, order.LineQuantity{Line: lq.Line, Quantity: lq.Quantity})
	}
	return out
}

func (s *Server) handleCancel(w http.ResponseWriter, r *http.Request) error {
	id, err := s.ownOrder(r)
	if err != nil {
		return err
	}
	var req cancelRequest
	if err := s.decode(r, &req); err != nil {
		return err
	}
	var v Validator
	checkLabel(&v, "reason", req.Reason, 500)
	var lines []order.LineQuantity
	if req.Items != nil {
		lines = toLines(&v, "items", req.Items, true)
	}
	if err := v.Err(); err != nil {
		return err
	}
	now := s.now()
	_, pos, err := execute(s, r, order.StreamID(id), newOrder, s.command(r, ""), func(o *order.Order) ([]event.Event, error) {
		if lines != nil {
			return o.CancelLines(lines, req.Reason, now)
		}
		return o.Cancel(req.Reason, now)
	})
	if err != nil {
		return err
	}
	return s.writeOrder(w, r, http.StatusOK, id, pos, "")
}

type captureJSON struct {
	Status string `json:"status"`
	Amount Money  `json:"amount"`
}

type shipmentJSON struct {
	ID             string         `json:"id"`
	OrderID        string         `json:"order_id"`
	Status         string         `json:"status"`
	Items          []itemQuantity `json:"items"`
	Carrier        *string        `json:"carrier"`
	TrackingNumber *string        `json:"tracking_number"`
	Capture        captureJSON    `json:"capture"`
	UpdatedAt      time.Time      `json:"updated_at"`
	Consistency    consistency    `json:"consistency"`
}

func newFulfillment() *fulfillment.Fulfillment { return &fulfillment.Fulfillment{} }

// handleShipment records a warehouse report about one of the order's
// shipments, as the fulfillment saga planned them (GET /v1/orders/{id}
// lists them once the order is confirmed): "shipped" (the carrier took the
// parcel: its amount is captured), "delivered", "failed" or "lost" (its
// amount is refunded). The report is appended to the order's carrier
// stream; the fulfillment saga acts on it. A repeated report appends
// nothing.
func (s *Server) handleShipment(w http.ResponseWriter, r *http.Request) error {
	id, err := s.ownOrder(r)
	if err != nil {
		return err
	}
	var req shipmentRequest
	if err := s.decode(r, &req); err != nil {
		return err
	}
	var v Validator
	checkID(&v, "shipment_id", req.ShipmentID)
	carrierEvent := map[string]string{"shipped": "dispatched", "delivered": "delivered", "failed": "failed", "lost": "lost"}[req.Status]
	if carrierEvent == "" {
		v.Add("status", "invalid_value", "must be shipped, delivered, failed or lost")
	}
	if req.Items != nil {
		toLines(&v, "items", req.Items, true)
	}
	for _, f := range []struct {
		p Path
		s *string
		n int
	}{{"carrier", req.Carrier, 100}, {"tracking_number", req.TrackingNumber, 100}, {"failure_reason", req.FailureReason, 500}} {
		if f.s != nil && len(*f.s) > f.n {
			v.Add(f.p, "too_long", fmt.Sprintf("must be at most %d characters", f.n))
		}
	}
	if req.OccurredAt.IsZero() {
		v.Add("occurred_at", "required", "is required")
	}
	if err := v.Err(); err != nil {
		return err
	}
	var (
		planned fulfillment.ShipmentView
		known   bool
	)
	if err := appQuery(s, r, fulfillment.StreamID(id), newFulfillment, func(f *fulfillment.Fulfillment, _ uint64) {
		planned, known = f.Shipment(req.ShipmentID)
	}); err != nil {
		return Internal(err)
	}
	if !known {
		return &Error{Code: CodeConflict, Message: "the order has no shipment " + req.ShipmentID + ": shipments are planned by the fulfillment saga once the order is confirmed (GET the order for their IDs)"}
	}
	items := make([]itemQuantity, 0, len(planned.Lines))
	for _, l := range planned.Lines {
		items = append(items, itemQuantity{Line: l.Line, Quantity: l.Quantity})
	}
	if req.Items != nil && !sameItems(req.Items, items) {
		return &Error{Code: CodeConflict, Message: "shipment " + req.ShipmentID + " was planned with other items; send its planned items or none",
			Fields: []FieldError{{Field: "items", Code: "mismatch", Message: "differs from the shipment's planned items"}}}
	}
	at := req.OccurredAt.UTC().Truncate(time.Microsecond)
	rep := CarrierReported{OrderID: id, ShipmentID: req.ShipmentID, Event: carrierEvent, At: at}
	if req.Carrier != nil {
		rep.Carrier = *req.Carrier
	}
	if req.TrackingNumber != nil {
		rep.TrackingNumber = *req.TrackingNumber
	}
	if req.FailureReason != nil {
		rep.Reason = *req.FailureReason
	}
	_, pos, err := execute(s, r, CarrierStreamID(id), newCarrierReports, s.command(r, ""), func(c *carrierReports) ([]event.Event, error) {
		return c.report(rep), nil
	})
	if err != nil {
		return err
	}
	value := money.Money{}
	if err := appQuery(s, r, order.StreamID(id), newOrder, func(o *order.Order, _ uint64) {
		value = money.Zero(o.Currency())
		ls := o.Lines()
		for _, it := range items {
			if it.Line >= 1 && it.Line <= len(ls) {
				if a, err := ls[it.Line-1].UnitPrice.MulInt(it.Quantity); err == nil {
					value, _ = value.Add(a)
				}
			}
		}
	}); err != nil {
		return Internal(err)
	}
	capture := "pending" // captured by the saga on dispatch
	if carrierEvent != "dispatched" {
		capture = "not_applicable"
	}
	return writeJSON(w, http.StatusAccepted, shipmentJSON{
		ID: req.ShipmentID, OrderID: id, Status: req.Status, Items: items,
		Carrier: req.Carrier, TrackingNumber: req.TrackingNumber,
		Capture:   captureJSON{Status: capture, Amount: MoneyOf(value)},
		UpdatedAt: at, Consistency: written(w, pos),
	})
}

func sameItems(a, b []itemQuantity) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[int]int64{}
	for _, x := range a {
		m[x.Line] += x.Quantity
	}
	for _, y := range b {
		if m[y.Line] != y.Quantity {
			return false
		}
		delete(m, y.Line)
	}
	return len(m) == 0
}

type refundJSON struct {
	ID          string      `json:"id"`
	OrderID     string      `json:"order_id"`
	Amount      Money       `json:"amount"`
	Refunded    *Money      `json:"refunded"`
	Status      string      `json:"status"`
	Reason      string      `json:"reason"`
	CreatedAt   time.Time   `json:"created_at"`
	Consistency consistency `json:"consistency"`
}

func (s *Server) handleRefund(w http.ResponseWriter, r *http.Request) error {
	id, err := s.ownOrder(r)
	if err != nil {
		return err
	}
	var req refundRequest
	if err := s.decode(r, &req); err != nil {
		return err
	}
	var v Validator
	amt := v.MoneyInput("amount", req.Amount)
	if amt.IsValid() && !amt.IsPositive() {
		v.Add("amount.amount", "out_of_range", "must be positive")
	}
	checkLabel(&v, "reason", req.Reason, 500)
	if err := v.Err(); err != nil {
		return err
	}
	cmd := s.command(r, "")
	refundID := newID("rfd_", cmd.ID)
	now := s.now()
	_, pos, err := execute(s, r, order.StreamID(id), newOrder, cmd, func(o *order.Order) ([]event.Event, error) {
		return o.RequestRefund(refundID, amt, req.Reason, now)
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, refundJSON{
		ID: refundID, OrderID: id, Amount: MoneyOf(amt), Status: "requested", Reason: req.Reason,
		CreatedAt: now, Consistency: written(w, pos),
	})
}

type returnJSON struct {
	ID          string         `json:"id"`
	OrderID     string         `json:"order_id"`
	Items       []itemQuantity `json:"items"`
	Status      string         `json:"status"`
	Reason      string         `json:"reason"`
	CreatedAt   time.Time      `json:"created_at"`
	Consistency consistency    `json:"consistency"`
}

func (s *Server) handleReturn(w http.ResponseWriter, r *http.Request) error {
	id, err := s.ownOrder(r)
	if err != nil {
		return err
	}
	var req returnRequest
	if err := s.decode(r, &req); err != nil {
		return err
	}
	var v Validator
	lines := toLines(&v, "items", req.Items, true)
	checkLabel(&v, "reason", req.Reason, 500)
	if err := v.Err(); err != nil {
		return err
	}
	cmd := s.command(r, "")
	returnID := newID("ret_", cmd.ID)
	now := s.now()
	_, pos, err := execute(s, r, order.StreamID(id), newOrder, cmd, func(o *order.Order) ([]event.Event, error) {
		return o.RequestReturn(returnID, lines, req.Reason, now)
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, returnJSON{
		ID: returnID, OrderID: id, Items: req.Items, Status: "requested", Reason: req.Reason,
		CreatedAt: now, Consistency: written(w, pos),
	})
}

type returnReceivedRequest struct {
	Items []itemQuantity `json:"items"`
}

// handleReturnReceived records what the warehouse received of a requested
// return (at most the requested quantities) and closes it; the refund saga
// then refunds the value of what arrived.
func (s *Server) handleReturnReceived(w http.ResponseWriter, r *http.Request) error {
	id, err := s.ownOrder(r)
	if err != nil {
		return err
	}
	returnID, err := pathID(r, "return_id", "return")
	if err != nil {
		return err
	}
	var req returnReceivedRequest
	if err := s.decode(r, &req); err != nil {
		return err
	}
	var v Validator
	lines := toLines(&v, "items", req.Items, true)
	if err := v.Err(); err != nil {
		return err
	}
	now := s.now()
	_, pos, err := execute(s, r, order.StreamID(id), newOrder, s.command(r, ""), func(o *order.Order) ([]event.Event, error) {
		return o.ReceiveReturn(returnID, lines, now)
	})
	if errors.Is(err, order.ErrUnknownReturn) {
		return notFound("return", returnID)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, returnJSON{
		ID: returnID, OrderID: id, Items: req.Items, Status: "received", Reason: "",
		CreatedAt: now, Consistency: written(w, pos),
	})
}

// Event history.

type actorJSON struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
	Role string `json:"role,omitempty"`
}

type eventJSON struct {
	ID         string          `json:"id"`
	Stream     string          `json:"stream"`
	Version    uint64          `json:"version"`
	Position   uint64          `json:"position"`
	Type       string          `json:"type"`
	OccurredAt time.Time       `json:"occurred_at"`
	RecordedAt time.Time       `json:"recorded_at"`
	Actor      *actorJSON      `json:"actor"`
	Data       json.RawMessage `json:"data"`
	Hash       string          `json:"hash"`
	PrevHash   string          `json:"prev_hash"`
}

type eventPage struct {
	Events    []eventJSON `json:"events"`
	NextAfter *uint64     `json:"next_after"`
}

// actorOf reads event.Metadata.Actor: "api_key/<id>/<role>" from the API,
// anything else from sagas ("saga...") or the system.
func actorOf(s string) *actorJSON {
	if s == "" {
		return nil
	}
	var kind, rest string
	switch {
	case len(s) > 8 && s[:8] == "api_key/":
		kind, rest = "api_key", s[8:]
		for i := len(rest) - 1; i >= 0; i-- {
			if rest[i] == '/' {
				return &actorJSON{Kind: kind, ID: rest[:i], Role: rest[i+1:]}
			}
		}
		return &actorJSON{Kind: kind, ID: rest}
	case len(s) >= 4 && s[:4] == "saga":
		return &actorJSON{Kind: "saga", ID: s}
	}
	return &actorJSON{Kind: "system", ID: s}
}

// writeEvents answers a page of stream's events after version after.
func (s *Server) writeEvents(w http.ResponseWriter, r *http.Request, stream string) error {
	after, err := parseAfter(r)
	if err != nil {
		return err
	}
	limit, err := parseLimit(r)
	if err != nil {
		return err
	}
	envs, err := s.backend.Events.ReadStream(r.Context(), stream, after+1, limit)
	if err != nil {
		return Internal(fmt.Errorf("read %s: %w", stream, err))
	}
	page := eventPage{Events: make([]eventJSON, 0, len(envs))}
	var pos uint64
	for _, e := range envs {
		page.Events = append(page.Events, eventJSON{
			ID: e.ID, Stream: e.StreamID, Version: e.Version, Position: e.Position, Type: e.Type,
			OccurredAt: e.RecordedAt.UTC(), RecordedAt: e.RecordedAt.UTC(), Actor: actorOf(e.Metadata.Actor),
			Data: json.RawMessage(e.Data), Hash: e.Hash.String(), PrevHash: e.PrevHash.String(),
		})
		pos = max(pos, e.Position)
	}
	if len(envs) == limit {
		next := envs[len(envs)-1].Version
		page.NextAfter = &next
	}
	if pos == 0 {
		if pos, err = s.backend.Head.Head(r.Context()); err != nil {
			return Internal(err)
		}
	}
	SetPosition(w, pos)
	return writeJSON(w, http.StatusOK, page)
}

func (s *Server) handleOrderEvents(w http.ResponseWriter, r *http.Request) error {
	id, err := s.ownOrder(r)
	if err != nil {
		return err
	}
	return s.writeEvents(w, r, order.StreamID(id))
}

// handleStreamEvents serves any stream of the tenant: its first event's
// tenant decides, like for orders.
func (s *Server) handleStreamEvents(w http.ResponseWriter, r *http.Request) error {
	stream := r.PathValue("stream")
	nf := notFound("stream", redactPAN(stream))
	if containsPAN(stream) || event.ValidateStreamID(stream) != nil || event.Category(stream) == stream {
		return nf
	}
	if err := s.ownStream(r, stream, nf); err != nil {
		return err
	}
	return s.writeEvents(w, r, stream)
}
