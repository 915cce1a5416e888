package payment

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/livecore/livecore/domain/event"
)

func TestParseTokenRefusesCardNumbers(t *testing.T) {
	for _, s := range []string{"tok_visa_approve", "tok_1", "tok_chargeback_12345678901"} {
		if tok, err := ParseToken(s); err != nil || tok.String() != s {
			t.Errorf("ParseToken(%q) = %v, %v", s, tok, err)
		}
	}
	for _, s := range []string{
		"4242424242424242", "tok_4242424242424242", "tok_visa_424242424242", "tok_", "", "visa",
		"tok_Visa", "tok_visa-approve", "tok_4242 4242 4242 4242", "tok_" + strings.Repeat("a", 125),
	} {
		_, err := ParseToken(s)
		if !errors.Is(err, ErrInvalidToken) {
			t.Errorf("ParseToken(%q) = %v, want ErrInvalidToken", s, err)
			continue
		}
		if len(s) >= 12 && strings.Contains(err.Error(), s) {
			t.Errorf("the error echoes the input: %v", err)
		}
	}
}

func TestDeclinedErrorMatchesErrDeclined(t *testing.T) {
	var err error = &DeclinedError{Reason: DeclineInsufficientFunds}
	var de *DeclinedError
	if !errors.Is(err, ErrDeclined) || !errors.As(err, &de) || de.Reason != DeclineInsufficientFunds {
		t.Fatalf("err = %v", err)
	}
}

// TestNoCardDataFields walks the port's requests and results and every
// payment event, failing on a field whose name suggests card data: a card
// reaches the domain only as a Token.
func TestNoCardDataFields(t *testing.T) {
	reg := event.NewRegistry()
	Register(reg)
	types := []reflect.Type{
		reflect.TypeFor[AuthorizeRequest](), reflect.TypeFor[CaptureRequest](), reflect.TypeFor[VoidRequest](),
		reflect.TypeFor[RefundRequest](), reflect.TypeFor[Result](), reflect.TypeFor[Authorization](),
	}
	for _, name := range reg.Names() {
		e, err := reg.Decode(name, []byte("{}"))
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, reflect.TypeOf(e).Elem())
	}
	checked := 0
	for _, typ := range types {
		for i := range typ.NumField() {
			f := typ.Field(i)
			checked++
			lower := strings.ToLower(f.Name)
			for _, bad := range []string{"pan", "card", "cvv", "cvc", "number", "expiry_month"} {
				if strings.Contains(lower, bad) {
					t.Errorf("%s.%s looks like card data", typ.Name(), f.Name)
				}
			}
		}
	}
	t.Logf("%d fields of %d types checked: 0 card-data fields", checked, len(types))
}
