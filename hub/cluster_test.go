package hub_test

import (
	"encoding/json"
	"testing"
)

func TestClusterFormsAndAcceptsWritesThroughAnyNode(t *testing.T) {
	c := startCluster(t, 3)
	w := newRegionWriter("edge-A")
	submit(t, c.nodes[0], w.base(t))
	// Every node takes writes: followers forward to the leader.
	for i, p := range c.nodes {
		res := submit(t, p, []json.RawMessage{w.sale(t, i)})
		if res[0].Seq == 0 {
			t.Fatalf("write via %s got no hub sequence: %+v", p.id, res[0])
		}
	}
	c.waitConverged()
	for _, p := range c.nodes {
		st, err := p.client.Status(c.ctx())
		if err != nil {
			t.Fatal(err)
		}
		// 42 base mutations and 3 sales, each logged under its own sequence.
		if len(st.Peers) != 3 || st.HubSeq != 45 || st.State == "" {
			t.Fatalf("%s status: %+v", p.id, st)
		}
	}
}
