package e2e

import (
	"encoding/json"
	"testing"

	"github.com/endcap/endcap/edge"
	"github.com/endcap/endcap/internal/scenario"
	"github.com/endcap/endcap/retail"
)

type jsonRaw = json.RawMessage

func mustEncode(t testing.TB, origin string, seq uint64, b retail.Body) json.RawMessage {
	t.Helper()
	raw, err := retail.Encode(retail.Mutation{ID: retail.MutationID{Origin: origin, Seq: seq}, HLC: retail.HLC{Wall: scenario.T0.UnixMilli()}, Actor: scenario.System, Body: b})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func writeReq(b retail.Body) edge.WriteRequest {
	raw, _ := json.Marshal(b)
	return edge.WriteRequest{Type: b.Type(), Actor: retail.Actor{Kind: "clerk", ID: "clerk"}, Body: raw}
}
