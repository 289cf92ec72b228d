package replication

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/endcap/endcap/retail"
)

// changesGolden are KindChanges messages: the first ones in the exact
// form Encode writes (parseChanges reads them), then near misses that
// must go the general way and come out the same, or fail the same.
var changesGolden = []struct {
	name    string
	payload string
	fast    bool // parseChanges reads it
}{
	{"feed", `{"v":1,"kind":"changes","region":"r","entries":[{"seq":5,"mutation_id":"A/1","status":"accepted","changes":[{"t":"settings","op":"put","c":["key","value"],"v":["k","v"]}]}],"head":5}`, true},
	{"catch-up answer", `{"v":1,"kind":"changes","region":"r","entries":[{"seq":5,"mutation_id":"A/1","status":"accepted","changes":[{"t":"settings","op":"put","c":["key","value"],"v":["k",null]}]},{"seq":6,"mutation_id":"A/2","status":"flagged","changes":[]}],"head":9,"last":true}`, true},
	{"no head", `{"v":1,"kind":"changes","region":"r","entries":[{"seq":1,"mutation_id":"A/1","status":"accepted","changes":[{"t":"settings","op":"del","c":["key"],"v":[-12]}]}]}`, true},
	{"escaped row value", `{"v":1,"kind":"changes","region":"r","entries":[{"seq":1,"mutation_id":"A/1","status":"accepted","changes":[{"t":"settings","op":"put","c":["key","value"],"v":["k","a\"b\u003c"]}]}],"head":1}`, true},

	{"spaces", `{"v":1, "kind":"changes","region":"r","entries":[{"seq":1,"mutation_id":"A/1","status":"accepted","changes":[]}],"head":1}`, false},
	{"fields in another order", `{"v":1,"kind":"changes","region":"r","head":1,"entries":[{"seq":1,"mutation_id":"A/1","status":"accepted","changes":[]}]}`, false},
	{"escaped region", `{"v":1,"kind":"changes","region":"\u0072","entries":[{"seq":1,"mutation_id":"A/1","status":"accepted","changes":[]}],"head":1}`, false},
	{"epoch", `{"v":1,"kind":"changes","region":"r","entries":[{"seq":1,"mutation_id":"A/1","status":"accepted","changes":[]}],"head":1,"epoch":"x"}`, false},
	{"last false", `{"v":1,"kind":"changes","region":"r","entries":[{"seq":1,"mutation_id":"A/1","status":"accepted","changes":[]}],"head":1,"last":false}`, false},
	{"null changes", `{"v":1,"kind":"changes","region":"r","entries":[{"seq":1,"mutation_id":"A/1","status":"accepted","changes":null}],"head":1}`, false},
	{"seq with a fraction", `{"v":1,"kind":"changes","region":"r","entries":[{"seq":1.0,"mutation_id":"A/1","status":"accepted","changes":[]}],"head":1}`, false},
	{"seq with a leading zero", `{"v":1,"kind":"changes","region":"r","entries":[{"seq":01,"mutation_id":"A/1","status":"accepted","changes":[]}],"head":1}`, false},
	{"seq past uint64", `{"v":1,"kind":"changes","region":"r","entries":[{"seq":18446744073709551616,"mutation_id":"A/1","status":"accepted","changes":[]}],"head":1}`, false},
	{"unknown entry field", `{"v":1,"kind":"changes","region":"r","entries":[{"seq":1,"mutation_id":"A/1","status":"accepted","changes":[],"x":1}],"head":1}`, false},
	{"no entries", `{"v":1,"kind":"changes","region":"r","entries":[],"head":1}`, false},
	{"bad row change", `{"v":1,"kind":"changes","region":"r","entries":[{"seq":1,"mutation_id":"A/1","status":"accepted","changes":[{"t":"x","op":"put","c":["a"],"v":[1.5]}]}],"head":1}`, false},
	{"unbalanced row change", `{"v":1,"kind":"changes","region":"r","entries":[{"seq":1,"mutation_id":"A/1","status":"accepted","changes":[{"t":"x","op":"put","c":["a"],"v":[1]]}],"head":1}`, false},
	{"data after", `{"v":1,"kind":"changes","region":"r","entries":[{"seq":1,"mutation_id":"A/1","status":"accepted","changes":[]}],"head":1} {}`, false},
	{"truncated", `{"v":1,"kind":"changes","region":"r","entries":[{"seq":1,"mutation_id":"A/1","status":"accepted","changes":[{"t":"x"`, false},
	{"version 2", `{"v":2,"kind":"changes","region":"r","entries":[{"seq":1,"mutation_id":"A/1","status":"accepted","changes":[]}],"head":1}`, false},
}

// checkParseChanges fails t unless parseChanges and the general decoder
// agree on payload: whatever the fast parser reads, the general one reads
// the same.
func checkParseChanges(t *testing.T, payload []byte) (fast bool) {
	t.Helper()
	got, ok := parseChanges(payload)
	want, err := decodeJSON(payload)
	if !ok {
		return false
	}
	if err != nil {
		t.Fatalf("parseChanges read %q, the general decoder fails: %v", payload, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parseChanges(%q)\n got %#v\nwant %#v", payload, got, want)
	}
	return true
}

func TestParseChangesMatchesTheGeneralDecoder(t *testing.T) {
	for _, tc := range changesGolden {
		t.Run(tc.name, func(t *testing.T) {
			if fast := checkParseChanges(t, []byte(tc.payload)); fast != tc.fast {
				t.Errorf("parseChanges read it: %v, want %v", fast, tc.fast)
			}
			// Decode gives the same answer either way.
			m, err := Decode("r", ClassDown, []byte(tc.payload))
			want, werr := decodeJSON([]byte(tc.payload))
			if werr == nil {
				werr = want.check()
			}
			if (err == nil) != (werr == nil) {
				t.Fatalf("Decode: %v; general decoder and check: %v", err, werr)
			}
			if err == nil && !reflect.DeepEqual(m, want) {
				t.Fatalf("Decode: %#v, want %#v", m, want)
			}
		})
	}
}

func FuzzParseChanges(f *testing.F) {
	for _, tc := range changesGolden {
		f.Add([]byte(tc.payload))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		checkParseChanges(t, payload)
	})
}

// TestEncodeChangesIsEncode: the hub's hand-written changes messages are
// byte for byte what Encode writes, for stored (raw) and decoded row
// changes, split where MaxPayload says.
func TestEncodeChangesIsEncode(t *testing.T) {
	entries, _ := catchupFixture(t, 1200) // over MaxPayload in all
	raws := make([]Change, len(entries))
	for i, e := range entries {
		b, err := json.Marshal(e.Changes)
		if err != nil {
			t.Fatal(err)
		}
		raws[i] = RawChange(e.Seq, e.MutationID, e.Status, b)
	}
	odd := Change{Seq: 1, MutationID: "A/1", Status: "st<a>tus\u2028", Changes: []retail.RowChange{}}
	for _, tc := range []struct {
		name    string
		entries []Change
		last    bool
	}{
		{"decoded", entries, false},
		{"raw", raws, true},
		{"escapes", []Change{odd}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs := 0
			for rest := tc.entries; len(rest) > 0; msgs++ {
				b, n, err := encodeChanges("r", rest, func(n int) (uint64, bool) { return rest[n-1].Seq + 7, tc.last && n == len(rest) })
				if err != nil {
					t.Fatal(err)
				}
				want, err := Encode(Message{Kind: KindChanges, Region: "r", Entries: rest[:n], Head: rest[n-1].Seq + 7, Last: tc.last && n == len(rest)})
				if err != nil {
					t.Fatalf("Encode of the %d entries encodeChanges put in one message: %v", n, err)
				}
				if !bytes.Equal(b, want) {
					t.Fatalf("encodeChanges:\n%.300s\nEncode:\n%.300s", b, want)
				}
				if n < len(rest) {
					if _, err := Encode(Message{Kind: KindChanges, Region: "r", Entries: rest[:n+1], Head: rest[n].Seq + 7}); err == nil {
						t.Fatalf("encodeChanges stopped at %d entries; %d fit", n, n+1)
					}
				}
				rest = rest[n:]
			}
			if len(tc.entries) > 1000 && msgs < 2 {
				t.Fatalf("%d entries in %d message", len(tc.entries), msgs)
			}
		})
	}
	big := RawChange(1, "A/1", retail.StatusAccepted, json.RawMessage(`[{"t":"settings","op":"put","c":["key","value"],"v":["k","`+strings.Repeat("x", MaxPayload)+`"]}]`))
	if _, _, err := encodeChanges("r", []Change{big}, func(int) (uint64, bool) { return 1, false }); err == nil {
		t.Fatal("an entry over MaxPayload was encoded")
	}
}

// TestFeedApplierWritesWhatApplyChangesWrites applies the same change log
// through ApplyFeed (multi-row statements, tables reordered) and one row
// at a time (retail.ApplyChanges) and compares the regions: real sales,
// and puts and deletes of the same keys over and over.
func TestFeedApplierWritesWhatApplyChangesWrites(t *testing.T) {
	ctx := context.Background()
	entries, _ := catchupFixture(t, 300)
	seq := uint64(len(entries))
	for i := range 200 {
		var cs []retail.RowChange
		for j := range 1 + i%5 {
			key := fmt.Sprintf("k%d", (i*7+j*3)%11)
			if (i+j)%4 == 0 {
				cs = append(cs, retail.RowChange{Table: "settings", Op: retail.OpDel, Cols: []string{"key"}, Vals: []any{key}})
			} else {
				cs = append(cs, retail.RowChange{Table: "settings", Op: retail.OpPut, Cols: []string{"key", "value"}, Vals: []any{key, fmt.Sprintf("v%d-%d", i, j)}})
			}
		}
		seq++
		entries = append(entries, Change{Seq: seq, MutationID: fmt.Sprintf("S/%d", seq), Status: retail.StatusAccepted, Changes: cs})
	}

	fast := openReplica(t, "F")
	for i := 0; i < len(entries); i += 97 {
		if _, err := fast.ApplyFeed(ctx, entries[i:min(i+97, len(entries))], false); err != nil {
			t.Fatal(err)
		}
	}
	if fast.applier == nil || fast.applier.order == nil {
		t.Fatal("the replica did not find an order of the tables to write them in")
	}

	slow, err := retail.Open(ctx, filepath.Join(t.TempDir(), "slow.db"), retail.Options{Durability: retail.DurabilityNormal})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	err = slow.Update(ctx, func(tx *retail.Tx) error {
		for _, e := range entries {
			if err := retail.ApplyChanges(ctx, tx, e.Changes); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want, err := retail.RegionChecksum(ctx, slow)
	if err != nil {
		t.Fatal(err)
	}
	got, applied, err := fast.RegionChecksum(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got != want || applied != seq {
		t.Fatalf("ApplyFeed: checksum %s at %d; one row at a time: %s at %d", got, applied, want, seq)
	}
}

// TestFeedApplierFallsBackWhenOrderShows: a trigger of someone else's
// could see the order of the writes, and then the feed goes in one row
// a statement.
func TestFeedApplierFallsBackWhenOrderShows(t *testing.T) {
	ctx := context.Background()
	r := openReplica(t, "F")
	db, done := r.DB()
	defer done()
	a, err := newFeedApplier(ctx, db)
	if err != nil || a.order == nil {
		t.Fatalf("replica schema: order %v, err %v", a.order, err)
	}
	if _, err := db.ExecContext(ctx, "CREATE TRIGGER audit AFTER INSERT ON settings BEGIN SELECT 1; END"); err != nil {
		t.Fatal(err)
	}
	if a, err = newFeedApplier(ctx, db); err != nil || a.order != nil {
		t.Fatalf("with another trigger: order %v, err %v", a.order, err)
	}
}
