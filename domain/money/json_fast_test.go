package money

import (
	"bufio"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// sameMoney reports whether a and b are the same value in every respect the
// package exposes: currency, amount, and the amount's coefficient and
// exponent (so StringFixed, MinorUnits and arithmetic cannot tell them apart).
func sameMoney(a, b Money) bool {
	return a.cur == b.cur && a.amount.Equal(b.amount) && a.amount.Exponent() == b.amount.Exponent() &&
		a.amount.Coefficient().Cmp(b.amount.Coefficient()) == 0
}

// checkFastPath checks the canonical fast path of UnmarshalJSON against the
// general one on data: whatever the fast path accepts, the general path
// accepts as the same Money; and UnmarshalJSON as a whole returns what the
// general path returns, error text included.
func checkFastPath(t *testing.T, data []byte) (fast bool) {
	t.Helper()
	var slow Money
	slowErr := slow.unmarshalJSON(data)
	f, ok := unmarshalCanonical(data)
	if ok && (slowErr != nil || !sameMoney(f, slow)) {
		t.Fatalf("fast path: %s = %v (exp %d), general path: %v (exp %d), %v", data, f, f.amount.Exponent(), slow, slow.amount.Exponent(), slowErr)
	}
	var got Money
	err := got.UnmarshalJSON(data)
	if (err == nil) != (slowErr == nil) || (err != nil && err.Error() != slowErr.Error()) || (err == nil && !sameMoney(got, slow)) {
		t.Fatalf("UnmarshalJSON(%s) = %v, %v; general path %v, %v", data, got, err, slow, slowErr)
	}
	return ok
}

func wireJSON(amount, code string) []byte {
	b, _ := json.Marshal(wire{Amount: amount, Currency: code})
	return b
}

// TestUnmarshalFastPathMatchesGeneral runs the comparison over the FuzzParse
// and FuzzJSON corpora, the amounts of the unit tests' shapes, and random
// amounts in every currency, and checks that the fast path does take every
// canonical MarshalJSON output (it is not dead code).
func TestUnmarshalFastPathMatchesGeneral(t *testing.T) {
	var inputs [][]byte
	// FuzzParse corpus entries: (amount, code) pairs.
	files, _ := filepath.Glob("testdata/fuzz/FuzzParse/*")
	if len(files) == 0 {
		t.Fatal("no FuzzParse corpus")
	}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		var vals []string
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "string("); ok {
				s, err := strconv.Unquote(strings.TrimSuffix(v, ")"))
				if err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				vals = append(vals, s)
			}
		}
		fh.Close()
		if len(vals) == 2 {
			inputs = append(inputs, wireJSON(vals[0], vals[1]))
		}
	}
	for _, s := range []string{
		`{"amount":"12.30","currency":"USD"}`, `{"amount":"1500","currency":"JPY"}`, `{"amount":"-1.234","currency":"BHD"}`,
		`{"amount":"-0","currency":"EUR"}`, `{"currency":"USD","amount":"0012.3"}`, `{"AMOUNT":"1","Currency":"USD"}`,
		`{"amount":"1","currency":"USD","amount":"2"}`, `{"amount":"1","currency":"USD","extra":[1,2,{}]}`,
		`{"amount":12.30,"currency":"USD"}`, `{"amount":"12.30"}`, `{"amount":"12.345","currency":"USD"}`,
		`{"amount":"1e3","currency":"USD"}`, `{"amount":"\u0031","currency":"\u0055SD"}`, `{"amount":"1","currency":"USD\u0000"}`,
		`{"amount":"１","currency":"USD"}`, `{"amount":"NaN","currency":"USD"}`, `{"amount":null,"currency":null}`,
		`{"amount":"100000000000000","currency":"USD"}`, `"12.30 USD"`, `12.30`, `null`, `{}`, `[]`, ``, `{`, "\xff",
		`{"amount":"","currency":"USD"}`, `{"amount":"-","currency":"USD"}`, `{"amount":"1.","currency":"USD"}`,
		`{"amount":".5","currency":"USD"}`, `{"amount":"1.2.3","currency":"USD"}`, `{"amount":"+1","currency":"USD"}`,
		`{"amount":"1.230","currency":"USD"}`, `{"amount":"1.5","currency":"JPY"}`, `{"amount":"99999999999999.99","currency":"USD"}`,
		`{"amount":"-99999999999999.9999","currency":"CLF"}`, `{"amount":"099999999999999.99","currency":"USD"}`,
		`{"amount":"1","currency":"usd"}`, `{"amount":"1","currency":"US"}`, `{"amount":"1","currency":"XAU"}`,
		`{"amount":"1","currency":"USD"} `, ` {"amount":"1","currency":"USD"}`, `{"amount": "1","currency":"USD"}`,
		`{"amount":"1","currency":"US"D"}`, `{"amount":"1"","currency":"USD"}`, `{"amount":"1","currency":""}`,
		`{"amount":"0.00","currency":"USD"}`, `{"amount":"-0.0001","currency":"CLF"}`, `{"amount":"` + strings.Repeat("0", 62) + `1","currency":"USD"}`,
		`{"amount":"` + strings.Repeat("0", 63) + `1","currency":"USD"}`, `{"amount":"` + strings.Repeat("9", 64) + `","currency":"USD"}`,
	} {
		inputs = append(inputs, []byte(s))
	}
	rng := rand.New(rand.NewPCG(7, 11))
	codes := Currencies()
	digits := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteByte(byte('0' + rng.IntN(10)))
		}
		return b.String()
	}
	for range 20000 {
		a := digits(1 + rng.IntN(17))
		if rng.IntN(2) == 0 {
			a += "." + digits(1+rng.IntN(5))
		}
		if rng.IntN(3) == 0 {
			a = "-" + a
		}
		inputs = append(inputs, wireJSON(a, codes[rng.IntN(len(codes))]))
	}
	fast := 0
	for _, in := range inputs {
		if checkFastPath(t, in) {
			fast++
		}
	}
	if fast < 1000 {
		t.Fatalf("the fast path took only %d of %d inputs", fast, len(inputs))
	}
	// Every canonical encoding takes the fast path.
	for _, code := range codes {
		for _, a := range []string{"0", "1", "-1", "12345678901234", "-99999999999999"} {
			m := MustParse(a, code)
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			if !checkFastPath(t, b) {
				t.Fatalf("canonical %s did not take the fast path", b)
			}
		}
	}
}

// FuzzJSONFastPath compares the fast path with the general one on any
// input; its seeds are canonical and near-canonical forms.
func FuzzJSONFastPath(f *testing.F) {
	for _, s := range []string{
		`{"amount":"12.30","currency":"USD"}`, `{"amount":"-0","currency":"JPY"}`, `{"amount":"0.0001","currency":"CLF"}`,
		`{"amount":"99999999999999.99","currency":"USD"}`, `{"amount":"100000000000000","currency":"USD"}`,
		`{"amount":"1.230","currency":"USD"}`, `{"amount":"1.","currency":"USD"}`, `{"amount":"1","currency":"USD","x":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkFastPath(t, data) })
}

func BenchmarkUnmarshalJSON(b *testing.B) {
	data := []byte(`{"amount":"1234.56","currency":"USD"}`)
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			var m Money
			if err := m.UnmarshalJSON(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("general", func(b *testing.B) {
		for b.Loop() {
			var m Money
			if err := m.unmarshalJSON(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
