package retail

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// goldenMutation is the mutation whose wire form is testdata/place_order.v1.json.
func goldenMutation() Mutation {
	exp := time.Date(2026, 11, 9, 0, 0, 0, 0, time.UTC)
	return Mutation{
		ID:    MutationID{Origin: "edge-S1", Seq: 42},
		HLC:   HLC{Wall: 1793613600000, Logical: 3},
		Actor: Actor{Kind: "clerk", ID: "assoc"},
		Body: &PlaceOrder{Order: Order{ID: "0193a1b2-0000-7000-8000-000000000001", CustomerID: "cust-1", Channel: ChannelKiosk,
			StoreID: "S1", Fulfilment: StorePickup, FulfilFrom: "DC1", PickupStore: "S2", ExpectedAt: &exp,
			Lines:   []Line{{SKU: "SKU-1", Qty: 1, UnitPriceCents: 8000}, {SKU: "SKU-3", Qty: 2, UnitPriceCents: 2500, DiscountCents: 500}},
			Tenders: []Tender{{Kind: TenderCard, AmountCents: 11500, CardToken: "tok-9"}},
			Coupons: []CouponUse{{Code: "C-7F2K", DiscountCents: 1000}}}},
	}
}

// The wire form is fixed byte for byte: the encoder must write the golden
// file, and the decoder must read it back to the same mutation.
func TestEnvelopeGolden(t *testing.T) {
	path := filepath.Join("testdata", "place_order.v1.json")
	got, err := Encode(goldenMutation())
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		var pretty bytes.Buffer
		json.Indent(&pretty, got, "", "  ")
		os.WriteFile(path, append(pretty.Bytes(), '\n'), 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, want); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, compact.Bytes()) {
		t.Errorf("encoding changed:\n got %s\nwant %s", got, compact.Bytes())
	}
	m, err := Decode(want)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, goldenMutation()) {
		t.Errorf("decoded %+v\nwant %+v", m, goldenMutation())
	}
}

func TestDecodeBadInput(t *testing.T) {
	good, err := Encode(goldenMutation())
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(map[string]any)) []byte {
		var m map[string]any
		json.Unmarshal(good, &m)
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	body := func(f func(map[string]any)) []byte {
		return edit(func(m map[string]any) { f(m["body"].(map[string]any)) })
	}
	cases := []struct {
		name string
		in   []byte
		want error
		say  string
	}{
		{"empty", nil, ErrMalformed, ""},
		{"not JSON", []byte("\x00\xffgarbage"), ErrMalformed, ""},
		{"a JSON array", []byte(`[1,2,3]`), ErrMalformed, ""},
		{"no version", edit(func(m map[string]any) { delete(m, "v") }), ErrMalformed, "no envelope version"},
		{"version as text", edit(func(m map[string]any) { m["v"] = "1" }), ErrMalformed, ""},
		{"a future version", edit(func(m map[string]any) { m["v"] = 2; m["extra"] = true }), ErrUnknownVersion, "2 (this program reads 1)"},
		{"version zero", edit(func(m map[string]any) { m["v"] = 0 }), ErrUnknownVersion, ""},
		{"unknown type", edit(func(m map[string]any) { m["type"] = "launch_rocket" }), ErrUnknownType, "launch_rocket"},
		{"unknown envelope field", edit(func(m map[string]any) { m["priority"] = 1 }), ErrMalformed, "priority"},
		{"unknown body field", body(func(b map[string]any) { b["gift_wrap"] = true }), ErrMalformed, "gift_wrap"},
		{"body of the wrong shape", edit(func(m map[string]any) { m["body"] = []int{1} }), ErrMalformed, ""},
		{"null body", edit(func(m map[string]any) { m["body"] = nil }), ErrInvalid, ""},
		{"no body", edit(func(m map[string]any) { delete(m, "body") }), ErrMalformed, "no body"},
		{"quantity as text", body(func(b map[string]any) { b["lines"].([]any)[0].(map[string]any)["qty"] = "1" }), ErrMalformed, ""},
		{"id without sequence", edit(func(m map[string]any) { m["id"] = "edge-S1" }), ErrMalformed, "origin/seq"},
		{"id with sequence 0", edit(func(m map[string]any) { m["id"] = "edge-S1/0" }), ErrMalformed, "starts at 1"},
		{"no timestamp", edit(func(m map[string]any) { delete(m, "hlc") }), ErrInvalid, "no timestamp"},
		{"no actor", edit(func(m map[string]any) { delete(m, "actor") }), ErrInvalid, "no actor"},
		{"negative quantity", body(func(b map[string]any) { b["lines"].([]any)[0].(map[string]any)["qty"] = -1 }), ErrInvalid, "not positive"},
		{"trailing data", append(append([]byte{}, good...), []byte(` {"v":1}`)...), ErrMalformed, "after top-level value"},
		{"too large", append(append([]byte{}, good...), bytes.Repeat([]byte(" "), MaxMutationSize)...), ErrTooLarge, ""},
	}
	sentinels := []error{ErrMalformed, ErrUnknownVersion, ErrUnknownType, ErrTooLarge, ErrInvalid}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.say) {
				t.Errorf("error %q does not say %q", err, tc.say)
			}
			n := 0
			for _, s := range sentinels {
				if errors.Is(err, s) {
					n++
				}
			}
			if n != 1 {
				t.Errorf("error %v wraps %d sentinels, want exactly 1", err, n)
			}
		})
	}
}

// Every mutation in the scenario survives the trip through the wire form.
func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, m := range scenario(t) {
		b, err := Encode(m)
		if errors.Is(err, ErrInvalid) {
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", m.ID, err)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("%s: %v", m.ID, err)
		}
		b2, _ := Encode(got)
		if !bytes.Equal(b, b2) {
			t.Fatalf("%s: re-encoding differs:\n%s\n%s", m.ID, b, b2)
		}
	}
}

func FuzzDecode(f *testing.F) {
	good, _ := Encode(goldenMutation())
	f.Add(good)
	f.Add([]byte(`{"v":1}`))
	f.Add([]byte(`{"v":1,"id":"a/1","hlc":{"w":1,"l":0},"actor":{"kind":"k","id":"i"},"type":"record_visit","body":{"id":"v","customer_id":"c","store_id":"s","method":"card"}}`))
	f.Add([]byte(`{"v":2}`))
	f.Add([]byte(`[]`))
	for _, typ := range MutationTypes() {
		f.Add([]byte(`{"v":1,"id":"a/1","hlc":{"w":1,"l":0},"actor":{"kind":"k","id":"i"},"type":"` + typ + `","body":{}}`))
	}
	sentinels := []error{ErrMalformed, ErrUnknownVersion, ErrUnknownType, ErrTooLarge, ErrInvalid}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			n := 0
			for _, s := range sentinels {
				if errors.Is(err, s) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("error %v wraps %d sentinels", err, n)
			}
			return
		}
		// Whatever decodes is valid, and encodes to something that decodes the same.
		enc, err := Encode(m)
		if err != nil {
			t.Fatalf("decoded mutation does not encode: %v", err)
		}
		m2, err := Decode(enc)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		// Compare wire forms, not structs: a time with a zone offset
		// decodes to an equal instant with a different *Location.
		enc2, err := Encode(m2)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("round trip changed the mutation (%v):\n%s\n%s", err, enc, enc2)
		}
	})
}

func FuzzRowChangeJSON(f *testing.F) {
	f.Add([]byte(`{"t":"settings","op":"put","c":["key","value"],"v":["k","v"]}`))
	f.Add([]byte(`{"t":"inventory","op":"put","c":["a"],"v":[1,null,"x",9007199254740993]}`))
	f.Add([]byte(`{"v":[1.5]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var c RowChange
		if err := json.Unmarshal(b, &c); err != nil {
			return
		}
		for _, v := range c.Vals {
			switch v.(type) {
			case nil, int64, string:
			default:
				t.Fatalf("value %v of type %T", v, v)
			}
		}
		enc, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		var c2 RowChange
		if err := json.Unmarshal(enc, &c2); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("round trip: %+v != %+v", c, c2)
		}
	})
}

func TestMutationIDText(t *testing.T) {
	for _, tc := range []struct {
		in   string
		ok   bool
		want MutationID
	}{
		{"edge-S1/42", true, MutationID{"edge-S1", 42}},
		{"a/b/7", false, MutationID{}}, // origin may not contain '/'
		{"/7", false, MutationID{}},
		{"x/0", false, MutationID{}},
		{"x/-1", false, MutationID{}},
		{"x", false, MutationID{}},
		{"x y/1", false, MutationID{}},
	} {
		got, err := ParseMutationID(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseMutationID(%q) = %v, %v", tc.in, got, err)
		}
		if tc.ok && got.String() != tc.in {
			t.Errorf("String() = %q, want %q", got.String(), tc.in)
		}
	}
}

// FuzzRowChangeFast: where the fast parser takes a row change, it reads
// exactly what the general decoder reads.
func FuzzRowChangeFast(f *testing.F) {
	f.Add([]byte(`{"t":"settings","op":"put","c":["key","value"],"v":["k","v"]}`))
	f.Add([]byte(`{"t":"inventory","op":"put","c":["a","b","c"],"v":[1,null,-9007199254740993]}`))
	f.Add([]byte(`{"t":"x","op":"del","c":[],"v":[]}`))
	f.Add([]byte(`{"t":"x","op":"put","c":["a"],"v":["é"]}`))
	f.Add([]byte(`{"t":"x","op":"put","c":["a"],"v":[01]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := parseRowChange(b)
		if !ok {
			return
		}
		var slow RowChange
		if err := slow.unmarshalSlow(b); err != nil {
			t.Fatalf("fast parser took %q, the general one refuses it: %v", b, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q: fast %#v, general %#v", b, fast, slow)
		}
	})
}
