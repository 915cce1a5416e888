package httpapi

import "testing"

func TestContainsPAN(t *testing.T) {
	for _, c := range []struct {
		in   string
		want bool
	}{
		{"4242424242424242", true},
		{"4242 4242 4242 4242", true},
		{"5555-5555-5555-4444", true},
		{"card 4000000000000002 please", true},
		{"x4242424242424242y", true},
		{"378282246310005", true},       // Amex, 15 digits
		{"99994242424242424242", true},  // a PAN inside a longer run
		{"4242424242424241", false},     // Luhn fails
		{"424242424242", false},         // 12 digits
		{"0000000000000000", false},     // no PAN starts with 0
		{"100000000000000", false},      // amounts below 10^15 are not PANs
		{"4242  4242 4242 4242", false}, // two spaces break the run (a grouping, not a number)
		{"1Z999AA10123456784", false},   // UPS tracking number
		{"ord_44wtp3f2a4fhmpy2nahz5n7gpz", false},
		{"8e03978e-40d5-43e8-bc93-6894a57f9324", false}, // a UUID
		{"", false},
	} {
		if got := containsPAN(c.in); got != c.want {
			t.Errorf("containsPAN(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestRedactPAN(t *testing.T) {
	if got := redactPAN("/v1/orders/4242424242424242/events"); got != "/v1/orders/REDACTED/events" {
		t.Errorf("redact: %q", got)
	}
	if got := redactPAN("/v1/orders/ord_1"); got != "/v1/orders/ord_1" {
		t.Errorf("redact changed a clean path: %q", got)
	}
}

func TestScanBodyForPANs(t *testing.T) {
	body := []byte(`{"a":"fine","b":[{"c":"4242 4242 4242 4242"}],"4242424242424242":1,"n":5555555555554444,"ok":"1.00"}`)
	got := scanBodyForPANs(body)
	want := map[string]bool{"b[0].c": true, "REDACTED": true, "n": true}
	if len(got) != len(want) {
		t.Fatalf("fields %+v, want %v", got, want)
	}
	for _, f := range got {
		if !want[f.Field] || f.Code != "card_number" {
			t.Errorf("unexpected field error %+v", f)
		}
	}
	if scanBodyForPANs([]byte(`{"amount":"19.99","qty":12}`)) != nil {
		t.Error("a clean body was flagged")
	}
}
