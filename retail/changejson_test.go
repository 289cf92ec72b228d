package retail

import (
	"bytes"
	"encoding/json"
	"testing"
)

// AppendChangesJSON writes what json.Marshal writes, for every value type
// and for strings that need escaping.
func TestAppendChangesJSONIsJSONMarshal(t *testing.T) {
	cases := [][]RowChange{
		nil,
		{},
		{{Table: "orders", Op: OpPut, Cols: []string{"id", "total", "note", "blob", "f", "b"},
			Vals: []any{"o-1", int64(-42), nil, []byte{0, 1, 255}, 2.5, true}}},
		{{Table: "t", Op: OpDel, Cols: []string{"k"}, Vals: []any{`quote " back \ <tag> & amp`}},
			{Table: "t", Op: OpPut, Cols: nil, Vals: nil},
			{Table: "é ü", Op: OpPut, Cols: []string{"\n\t\x01", "\u2028"}, Vals: []any{"caf\xe9 bad utf8", "日本", int64(9007199254740993)}}},
	}
	for i, cs := range cases {
		want, err := json.Marshal(cs)
		if err != nil {
			t.Fatal(err)
		}
		got, err := AppendChangesJSON([]byte("prefix"), cs)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Errorf("case %d:\n got %s\nwant prefix%s", i, got, want)
		}
	}
}

func FuzzAppendChangesJSON(f *testing.F) {
	f.Add("orders", "id", "o-1", int64(7))
	f.Add("t<", "\x00", "\xff\u2028&", int64(-1))
	f.Fuzz(func(t *testing.T, table, col, s string, n int64) {
		cs := []RowChange{{Table: table, Op: OpPut, Cols: []string{col, "n", "z"}, Vals: []any{s, n, nil}}}
		want, err := json.Marshal(cs)
		if err != nil {
			t.Skip()
		}
		got, err := AppendChangesJSON(nil, cs)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("got %s (%v)\nwant %s", got, err, want)
		}
	})
}
