package order

import "fmt"

// Status is where an order is in its life cycle (see the package doc). The
// zero Status is "not placed": the order does not exist yet. Statuses cannot
// be forged; they come from the package variables and ParseStatus.
type Status struct{ s string }

// The statuses.
var (
	StatusPlaced             = Status{"placed"}
	StatusCheckoutStarted    = Status{"checkout_started"}
	StatusConfirmed          = Status{"confirmed"}
	StatusPartiallyFulfilled = Status{"partially_fulfilled"}
	StatusFulfilled          = Status{"fulfilled"}
	StatusCompleted          = Status{"completed"}
	StatusCancelled          = Status{"cancelled"}
)

var statuses = []Status{
	StatusPlaced, StatusCheckoutStarted, StatusConfirmed, StatusPartiallyFulfilled,
	StatusFulfilled, StatusCompleted, StatusCancelled,
}

// ParseStatus returns the status named s ("confirmed"); ErrInvalidStatus
// otherwise.
func ParseStatus(s string) (Status, error) {
	for _, st := range statuses {
		if st.s == s {
			return st, nil
		}
	}
	return Status{}, fmt.Errorf("%w: %q", ErrInvalidStatus, s)
}

// String is the status's name; "none" for the zero Status.
func (s Status) String() string {
	if s.s == "" {
		return "none"
	}
	return s.s
}

// IsZero reports whether s is the zero Status (order not placed).
func (s Status) IsZero() bool { return s.s == "" }

// PaymentMethod is how the customer pays: by card or with a buy-now-pay-later
// plan. It cannot be forged; parse strings with ParsePaymentMethod.
type PaymentMethod struct{ s string }

// The payment methods.
var (
	MethodCard = PaymentMethod{"card"}
	MethodBNPL = PaymentMethod{"bnpl"}
)

// ParsePaymentMethod returns the method named s ("card", "bnpl");
// ErrInvalidPaymentMethod otherwise.
func ParsePaymentMethod(s string) (PaymentMethod, error) {
	switch s {
	case MethodCard.s:
		return MethodCard, nil
	case MethodBNPL.s:
		return MethodBNPL, nil
	}
	return PaymentMethod{}, fmt.Errorf("%w: %q", ErrInvalidPaymentMethod, s)
}

func (m PaymentMethod) String() string { return m.s }

// IsZero reports whether m is the zero (unchosen) method.
func (m PaymentMethod) IsZero() bool { return m.s == "" }

// MarshalText encodes the method's name; the zero method is an error.
func (m PaymentMethod) MarshalText() ([]byte, error) {
	if m.IsZero() {
		return nil, fmt.Errorf("%w: zero payment method", ErrInvalidPaymentMethod)
	}
	return []byte(m.s), nil
}

// UnmarshalText parses with ParsePaymentMethod.
func (m *PaymentMethod) UnmarshalText(b []byte) error {
	p, err := ParsePaymentMethod(string(b))
	if err != nil {
		return err
	}
	*m = p
	return nil
}

// PlanKind is the kind of BNPL plan a customer chose. A card checkout has the
// zero PlanKind. It cannot be forged; parse strings with ParsePlanKind.
type PlanKind struct{ s string }

// The BNPL plan kinds.
var (
	// PlanPayIn4: four equal installments, the first at checkout, then every
	// two weeks, no interest.
	PlanPayIn4 = PlanKind{"pay_in_4"}
	// PlanMonthly3, PlanMonthly6 and PlanMonthly12: monthly installments
	// over 3, 6 or 12 months, possibly with interest (the financing
	// aggregate decides).
	PlanMonthly3  = PlanKind{"monthly_3"}
	PlanMonthly6  = PlanKind{"monthly_6"}
	PlanMonthly12 = PlanKind{"monthly_12"}
)

// planKinds has the same names as financing's plan kinds (a test keeps
// them in step), so the checkout saga can pass the choice on by name.
var planKinds = []PlanKind{PlanPayIn4, PlanMonthly3, PlanMonthly6, PlanMonthly12}

// ParsePlanKind returns the plan kind named s; ErrInvalidPlanKind otherwise.
func ParsePlanKind(s string) (PlanKind, error) {
	for _, p := range planKinds {
		if p.s == s {
			return p, nil
		}
	}
	return PlanKind{}, fmt.Errorf("%w: %q", ErrInvalidPlanKind, s)
}

func (p PlanKind) String() string { return p.s }

// IsZero reports whether p is the zero PlanKind (no plan: a card checkout).
func (p PlanKind) IsZero() bool { return p.s == "" }

// MarshalText encodes the plan kind's name; the zero kind is an error (event
// fields holding a PlanKind are tagged omitzero).
func (p PlanKind) MarshalText() ([]byte, error) {
	if p.IsZero() {
		return nil, fmt.Errorf("%w: zero plan kind", ErrInvalidPlanKind)
	}
	return []byte(p.s), nil
}

// UnmarshalText parses with ParsePlanKind.
func (p *PlanKind) UnmarshalText(b []byte) error {
	k, err := ParsePlanKind(string(b))
	if err != nil {
		return err
	}
	*p = k
	return nil
}
