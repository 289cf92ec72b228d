package replication

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/endcap/endcap/retail"
)

// EncodeEffects writes the message json.Marshal writes, DecodeEffects
// reads it back, and both give each entry's row changes as the bytes in
// the message.
func TestEffectsRoundTrip(t *testing.T) {
	entries := func() []Change {
		return []Change{
			{Seq: 8, MutationID: "S01/1", Status: retail.StatusAccepted, Changes: []retail.RowChange{
				{Table: "orders", Op: retail.OpPut, Cols: []string{"id", "total_cents", "note"}, Vals: []any{"o<1>", int64(3000), nil}}}},
			{Seq: 9, MutationID: "S01/2", Status: retail.StatusRejected, Changes: []retail.RowChange{
				{Table: "applied_mutations", Op: retail.OpDel, Cols: []string{"id"}, Vals: []any{"S01/2"}}}},
		}
	}
	for _, base := range []uint64{0, 7} {
		es := entries()
		b, err := EncodeEffects(base, es)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(Message{V: ProtocolVersion, Kind: KindChanges, Entries: entries(), Head: base})
		if !bytes.Equal(b, want) {
			t.Fatalf("base %d:\n got %s\nwant %s", base, b, want)
		}
		gotBase, got, err := DecodeEffects(b)
		if err != nil || gotBase != base {
			t.Fatalf("decode: base %d, %v", gotBase, err)
		}
		for i := range got {
			raw, _ := got[i].RawChanges()
			enc, _ := es[i].RawChanges()
			plain, _ := json.Marshal(es[i].Changes)
			if !bytes.Equal(raw, plain) || !bytes.Equal(enc, plain) {
				t.Errorf("entry %d: raw %s, encoded %s, want %s", i, raw, enc, plain)
			}
			got[i].raw = nil
		}
		if !reflect.DeepEqual(got, entries()) {
			t.Errorf("decoded %+v", got)
		}
	}
	if _, _, err := DecodeEffects([]byte(`{"v":1,"kind":"head","region":""}`)); err == nil {
		t.Error("a head message decoded as effects")
	}
}
