package httpapi_test

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/livecore/livecore/adapters/httpapi"
	"github.com/livecore/livecore/domain/money"
)

type planKind string

func (p *planKind) UnmarshalText(b []byte) error {
	switch string(b) {
	case "pay_in_4", "monthly_6":
		*p = planKind(b)
		return nil
	}
	return fmt.Errorf("unknown plan kind %q", b)
}

type decodeTarget struct {
	Name  string            `json:"name"`
	Count int32             `json:"count"`
	Opt   *int64            `json:"opt"`
	Flag  bool              `json:"flag"`
	Plan  planKind          `json:"plan"`
	Tags  []string          `json:"tags"`
	Meta  map[string]string `json:"meta"`
	Any   any               `json:"any"`
	Lines []struct {
		Price httpapi.Money `json:"price"`
	} `json:"lines"`
	Embedded
	Ignored string `json:"-"`
}

type Embedded struct {
	Inner string `json:"inner"`
}

func TestDecodeJSON(t *testing.T) {
	type fe struct{ field, code string }
	for _, tc := range []struct {
		name, body string
		code       httpapi.Code // "" = success
		fields     []fe
	}{
		{"ok", `{"name":"a","count":3,"opt":null,"flag":true,"plan":"pay_in_4","tags":["x"],"meta":{"k":"v"},"any":{"deep":[1,2]},"lines":[{"price":{"amount":"1.00","currency":"USD"}}],"inner":"e"}`, "", nil},
		{"empty object", `{}`, "", nil},
		{"whitespace around", " \n{\"name\":\"a\"}\n ", "", nil},
		{"unknown nested", `{"lines":[{"price":{"amount":"1","currency":"USD","fx":1}}]}`, httpapi.CodeMalformed, []fe{{"lines[0].price.fx", "unknown_field"}}},
		{"every error listed", `{"Name":"a","count":"3","tags":[1],"ignored":"x"}`, httpapi.CodeMalformed, []fe{{"Name", "unknown_field"}, {"count", "wrong_type"}, {"tags[0]", "wrong_type"}, {"ignored", "unknown_field"}}},
		{"duplicate", `{"name":"a","name":"b"}`, httpapi.CodeMalformed, []fe{{"name", "duplicate_field"}}},
		{"int overflow", `{"count":3000000000}`, httpapi.CodeMalformed, []fe{{"count", "wrong_type"}}},
		{"fraction for int", `{"count":1.5}`, httpapi.CodeMalformed, []fe{{"count", "wrong_type"}}},
		{"null for string", `{"name":null}`, httpapi.CodeMalformed, []fe{{"name", "wrong_type"}}},
		{"object for string", `{"name":{"a":[1,{"b":2}]},"flag":true}`, httpapi.CodeMalformed, []fe{{"name", "wrong_type"}}},
		{"odd map key", `{"meta":{"a b":1}}`, httpapi.CodeMalformed, []fe{{`meta["a b"]`, "wrong_type"}}},
		{"text unmarshaler refuses", `{"plan":"pay_in_5"}`, httpapi.CodeInvalid, []fe{{"plan", "invalid_value"}}},
		{"shape beats values", `{"plan":"pay_in_5","x":1}`, httpapi.CodeMalformed, []fe{{"x", "unknown_field"}}},
		{"array body", `[{}]`, httpapi.CodeMalformed, []fe{{"(body)", "wrong_type"}}},
		{"empty", ``, httpapi.CodeMalformed, nil},
		{"trailing value", `{} {}`, httpapi.CodeMalformed, nil},
		{"trailing garbage", `{}]`, httpapi.CodeMalformed, nil},
		{"truncated", `{"name":"a"`, httpapi.CodeMalformed, nil},
		{"syntax", `{"name":'a'}`, httpapi.CodeMalformed, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var dst decodeTarget
			err := httpapi.DecodeJSON([]byte(tc.body), &dst)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("DecodeJSON: %v", err)
				}
				return
			}
			var e *httpapi.Error
			if !errors.As(err, &e) || e.Code != tc.code {
				t.Fatalf("DecodeJSON = %v, want code %s", err, tc.code)
			}
			if len(e.Fields) != len(tc.fields) {
				t.Fatalf("fields %+v, want %v", e.Fields, tc.fields)
			}
			for i, f := range tc.fields {
				if e.Fields[i].Field != f.field || e.Fields[i].Code != f.code {
					t.Errorf("field %d = %+v, want %v", i, e.Fields[i], f)
				}
			}
		})
	}
}

func TestDecodeJSONFillsValues(t *testing.T) {
	var dst decodeTarget
	body := `{"name":"a","count":3,"opt":7,"plan":"monthly_6","meta":{"k":"v"},"any":1.10,"inner":"e"}`
	if err := httpapi.DecodeJSON([]byte(body), &dst); err != nil {
		t.Fatal(err)
	}
	if dst.Name != "a" || dst.Count != 3 || *dst.Opt != 7 || dst.Plan != "monthly_6" || dst.Meta["k"] != "v" || dst.Inner != "e" || fmt.Sprint(dst.Any) != "1.10" {
		t.Fatalf("decoded %+v", dst)
	}
}

func TestValidatorMoney(t *testing.T) {
	type fe struct{ field, code string }
	for _, tc := range []struct {
		in   httpapi.Money
		want string
		errs []fe
	}{
		{httpapi.Money{Amount: "12.30", Currency: "USD"}, "12.30 USD", nil},
		{httpapi.Money{Amount: "-0", Currency: "USD"}, "0.00 USD", nil},
		{httpapi.Money{Amount: "1500", Currency: "JPY"}, "1500 JPY", nil},
		{httpapi.Money{Amount: "1.5", Currency: "JPY"}, "", []fe{{"p.amount", "too_many_decimals"}}},
		{httpapi.Money{Amount: "1.2345", Currency: "BHD"}, "", []fe{{"p.amount", "too_many_decimals"}}},
		{httpapi.Money{Amount: "1e400", Currency: "USD"}, "", []fe{{"p.amount", "invalid_amount"}}},
		{httpapi.Money{Amount: "NaN", Currency: "USD"}, "", []fe{{"p.amount", "invalid_amount"}}},
		{httpapi.Money{Amount: "1,000.00", Currency: "USD"}, "", []fe{{"p.amount", "invalid_amount"}}},
		{httpapi.Money{Amount: "99999999999999999", Currency: "USD"}, "", []fe{{"p.amount", "out_of_range"}}},
		{httpapi.Money{Amount: "", Currency: "USD"}, "", []fe{{"p.amount", "required"}}},
		{httpapi.Money{Amount: "1.00", Currency: "XYZ"}, "", []fe{{"p.currency", "unknown_currency"}}},
		{httpapi.Money{Amount: "abc", Currency: ""}, "", []fe{{"p.currency", "required"}, {"p.amount", "invalid_amount"}}},
	} {
		var v httpapi.Validator
		m := v.Money("p", tc.in)
		if tc.want != "" {
			if v.Err() != nil || m.String() != tc.want {
				t.Errorf("%+v: %v %v", tc.in, m, v.Err())
			}
			if tc.in.Amount != "-0" && httpapi.MoneyOf(m) != (httpapi.Money{Amount: tc.in.Amount, Currency: tc.in.Currency}) {
				t.Errorf("MoneyOf round trip: %+v", httpapi.MoneyOf(m))
			}
			continue
		}
		var e *httpapi.Error
		if !errors.As(v.Err(), &e) || e.Code != httpapi.CodeInvalid || m != (money.Money{}) {
			t.Errorf("%+v: %v", tc.in, v.Err())
			continue
		}
		if len(e.Fields) != len(tc.errs) {
			t.Errorf("%+v: fields %+v, want %v", tc.in, e.Fields, tc.errs)
			continue
		}
		for i, f := range tc.errs {
			if e.Fields[i].Field != f.field || e.Fields[i].Code != f.code {
				t.Errorf("%+v: field %d = %+v, want %v", tc.in, i, e.Fields[i], f)
			}
		}
	}
}

func TestErrorOfMapsOnce(t *testing.T) {
	for _, tc := range []struct {
		err    error
		code   httpapi.Code
		status int
	}{
		{httpapi.Errorf(httpapi.CodeConflict, "x"), httpapi.CodeConflict, 409},
		{fmt.Errorf("wrapped: %w", httpapi.Errorf(httpapi.CodeNotFound, "x")), httpapi.CodeNotFound, 404},
		{fmt.Errorf("price: %w", money.ErrTooManyDecimals), httpapi.CodeInvalid, 422},
		{httpapi.ErrIdempotencyInFlight, httpapi.CodeIdempotencyKeyInUse, 409},
		{httpapi.ErrIdempotencyMismatch, httpapi.CodeIdempotencyKeyReused, 422},
		{httpapi.ErrUnauthenticated, httpapi.CodeUnauthorized, 401},
		{&httpapi.Error{Code: "made_up"}, httpapi.CodeInternal, 500},
		{errors.New("disk on fire"), httpapi.CodeInternal, 500},
	} {
		e := httpapi.ErrorOf(tc.err)
		if e.Code != tc.code || e.Code.Status() != tc.status {
			t.Errorf("ErrorOf(%v) = %s/%d, want %s/%d", tc.err, e.Code, e.Code.Status(), tc.code, tc.status)
		}
	}
	for _, c := range httpapi.Codes() {
		if c.Status() < 400 || c.Title() == "" {
			t.Errorf("code %s: status %d title %q", c, c.Status(), c.Title())
		}
	}
}

type orderLike struct {
	CustomerID *string `json:"customer_id"`
	Currency   string  `json:"currency"`
	Items      []struct {
		SKU       string        `json:"sku"`
		Quantity  int64         `json:"quantity"`
		UnitPrice httpapi.Money `json:"unit_price"`
	} `json:"items"`
	Payment *struct {
		Method    string  `json:"method"`
		CardToken *string `json:"card_token"`
	} `json:"payment"`
}

var decodeSeeds = []string{
	`{"customer_id":"cus_bench","currency":"USD","items":[{"sku":"TSHIRT-RED-M","quantity":1,"unit_price":{"amount":"19.99","currency":"USD"}},{"sku":"MUG-01","quantity":2,"unit_price":{"amount":"12.50","currency":"USD"}}],"payment":{"method":"card","card_token":"tok_visa"}}`,
	`{"customer_id":null,"currency":"EUR","items":[],"payment":null}`,
	`{"customer_id":"a","customer_id":"b"}`,
	`{"Currency":"USD"}`,
	`{"currency":"US\u0044"}`,
	`{"curr\u0065ncy":"USD"}`,
	`{"items":[{"quantity":1.0}]}`,
	`{"items":[{"quantity":9223372036854775808}]}`,
	`{"items":null}`,
	`{"items":[null]}`,
	`{"items":{}}`,
	`{"currency":1}`,
	`{"currency":"USD"} `,
	`{"currency":"USD"}x`,
	`{"currency":"USD"}{}`,
	`{"currency":"USD",}`,
	`{"currency" "USD"}`,
	`{"items":[{"unit_price":{"amount":1}}]}`,
	`{"items":[{"unit_price":null}]}`,
	`{"payment":{"method":"card","card_token":null,"x":1}}`,
	`{"name":"a","count":3,"opt":null,"flag":true,"plan":"pay_in_4","tags":["x"],"meta":{"k":"v"},"any":{"deep":[1,2]},"lines":[{"price":{"amount":"1.00","currency":"USD"}}],"inner":"e"}`,
	`{"plan":"pay_in_5"}`, `{"plan":null}`, `{"plan":3}`, `{"meta":{"a":"1","a":"2"}}`, `{"meta":null}`, `{"any":nul}`, `{"count":-0}`, `{"count":1e2}`,
	`{"flag":tru}`, `{"tags":["a",]}`, `{"name":"a\"b\\c\u00e9"}`, `{"name":"tab	here"}`, "\t{}\n", `[]`, `"x"`, `null`, `{`, `}`,
}

// TestDecodeJSONFastPathAgreesWithWalker: the fast path decides exactly as
// the walker's path does (same error, same decoded value), and it is taken
// for a well-formed order.
func TestDecodeJSONFastPathAgreesWithWalker(t *testing.T) {
	for _, body := range decodeSeeds {
		checkDecodeAgrees(t, []byte(body))
	}
	var o orderLike
	if !httpapi.ShapeOKForTest([]byte(decodeSeeds[0]), &o) {
		t.Errorf("the fast path refuses a well-formed order")
	}
	if httpapi.ShapeOKForTest([]byte(decodeSeeds[2]), &o) || httpapi.ShapeOKForTest([]byte(decodeSeeds[3]), &o) || httpapi.ShapeOKForTest([]byte(`{"customer_id":"a"} x`), &o) {
		t.Errorf("the fast path accepts a duplicate member, a case variant or trailing data")
	}
}

func FuzzDecodeJSONFastPath(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkDecodeAgrees(t, body) })
}

func checkDecodeAgrees(t *testing.T, body []byte) {
	t.Helper()
	check := func(fast, walked any) {
		errFast := httpapi.DecodeJSON(body, fast)
		errWalked := httpapi.DecodeJSONWalkedForTest(body, walked)
		var a, b *httpapi.Error
		errors.As(errFast, &a)
		errors.As(errWalked, &b)
		if (errFast == nil) != (errWalked == nil) || a != nil && (b == nil || a.Code != b.Code || a.Message != b.Message || !reflect.DeepEqual(a.Fields, b.Fields)) {
			t.Fatalf("body %q:\nfast   %v %+v\nwalked %v %+v", body, errFast, a, errWalked, b)
		}
		if errFast == nil && !reflect.DeepEqual(fast, walked) {
			t.Fatalf("body %q: fast decoded %+v, walked %+v", body, fast, walked)
		}
	}
	check(&orderLike{}, &orderLike{})
	check(&decodeTarget{}, &decodeTarget{})
}
