package payment

import (
	"errors"
	"strings"
	"testing"
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
