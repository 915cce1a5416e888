package sandbox

import (
	"fmt"

	"github.com/livecore/livecore/domain/payment"
)

// testCards maps the sandbox's test card numbers to their tokens.
var testCards = map[string]string{
	"4242424242424242": "tok_visa_approve",
	"5555555555554444": "tok_mastercard_approve",
	"4000000000000002": "tok_decline_do_not_honor",
	"4000000000009995": "tok_decline_insufficient_funds",
	"4000000000000069": "tok_decline_expired_card",
	"4100000000000019": "tok_decline_fraud",
	"4000000000000127": "tok_timeout_approve",
	"4000000000000135": "tok_unavailable",
}

// Tokenize maps a test card number (digits, optionally grouped with spaces
// or dashes) to its token, like a provider's client-side tokenization. It
// keeps nothing and its errors never contain the number. A number that is
// not one of the test cards is refused, as test modes refuse real cards.
func Tokenize(number string) (payment.Token, error) {
	digits := make([]byte, 0, 19)
	for i := 0; i < len(number); i++ {
		switch c := number[i]; {
		case c >= '0' && c <= '9':
			digits = append(digits, c)
		case c == ' ' || c == '-':
		default:
			return payment.Token{}, fmt.Errorf("sandbox: %w: a card number has only digits, spaces and dashes", payment.ErrInvalidToken)
		}
	}
	if len(digits) < 12 || len(digits) > 19 || !luhn(digits) {
		return payment.Token{}, fmt.Errorf("sandbox: %w: not a valid card number", payment.ErrInvalidToken)
	}
	tok, ok := testCards[string(digits)]
	if !ok {
		return payment.Token{}, fmt.Errorf("sandbox: %w: not a sandbox test card", payment.ErrInvalidToken)
	}
	return payment.ParseToken(tok)
}

func luhn(digits []byte) bool {
	sum := 0
	for i := range digits {
		d := int(digits[len(digits)-1-i] - '0')
		if i%2 == 1 {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}
