package hub

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/endcap/endcap/internal/scenario"
)

// The bridge answers a resent upload's duplicates from the node's own
// state (PreviousResults): each answer must be the one raft gives for the
// same duplicate, exceptions included.
func TestPreviousResultsAreTheDuplicateAnswers(t *testing.T) {
	n, _ := startNode(t, nil)
	ctx := context.Background()
	var raws []json.RawMessage
	for _, b := range scenario.Seed() {
		raws = append(raws, encode(t, uint64(len(raws)+1), b))
	}
	// The same coupon at two stores: the second sale is flagged, with an
	// exception.
	raws = append(raws, encode(t, uint64(len(raws)+1), scenario.Sale("ORD-A", "S1", "cust-1", 1, "CPN-ONE")))
	raws = append(raws, encode(t, uint64(len(raws)+1), scenario.Sale("ORD-B", "S2", "cust-1", 1, "CPN-ONE")))
	be := backend{n}
	if _, err := be.Submit(ctx, raws); err != nil {
		t.Fatal(err)
	}
	again, err := be.Submit(ctx, raws) // duplicates, through raft
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{"t/999"} // never applied
	for _, r := range again {
		ids = append(ids, r.ID)
	}
	got, err := be.PreviousResults(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got["t/999"]; ok || len(got) != len(again) {
		t.Fatalf("%d results for %d applied mutations (and one never applied): %v", len(got), len(again), got)
	}
	flagged := 0
	for _, want := range again {
		if !want.Duplicate {
			t.Fatalf("resubmitted %s is not a duplicate: %+v", want.ID, want)
		}
		if !reflect.DeepEqual(got[want.ID], want) {
			t.Errorf("%s: PreviousResults %+v, raft %+v", want.ID, got[want.ID], want)
		}
		if len(want.Exceptions) > 0 {
			flagged++
		}
	}
	if flagged == 0 {
		t.Fatal("no result with exceptions to compare")
	}
}
