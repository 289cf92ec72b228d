package edge

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/endcap/endcap/internal/mqtttest"
	"github.com/endcap/endcap/internal/scenario"
	"github.com/endcap/endcap/replication"
	"github.com/endcap/endcap/retail"
)

// BenchmarkSignInToWallet measures a shopper's sign-in at the kiosk until
// her coupons arrive at a phone subscribed to her wallet topic: the visit,
// the offer choice, the coupons written (FULL durability) and published
// through the embedded broker. An op is 100 sign-ins of different
// shoppers; p50/p99 are of the single sign-ins. Target p99 < 50 ms.
func BenchmarkSignInToWallet(b *testing.B) {
	const perOp = 100
	ctx := context.Background()
	var extra []retail.Body
	n := (b.N + 1) * perOp
	for i := range n {
		extra = append(extra, &retail.UpsertCustomer{ID: fmt.Sprintf("shopper-%d", i), Name: "Shopper", Since: scenario.T0.AddDate(-1, 0, 0),
			AcquiredVia: retail.AcquiredWalkIn, AcquiredStore: "S1"})
	}
	s, _, _ := testStore(b, extra...)
	pw := &replication.Passwords{}
	pw.Set("S1", "pw-S1")
	pw.Set("wallet", "pw-wallet")
	broker := mqtttest.StartEmbedded(b, replication.BrokerConfig{Region: "test", Passwords: pw})
	conn := replication.Dial(ctx, replication.MQTTConfig{URL: broker.URL(), ClientID: "edge-test-S1", Username: "S1", Password: "pw-S1"})
	b.Cleanup(conn.Close)
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := conn.WaitConnected(wctx); err != nil {
		b.Fatal(err)
	}
	s.wallet = connWallet{conn}
	s.now = time.Now // coupons valid from now

	got := make(chan string, 1024)
	phone := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL()).SetClientID("phone").SetUsername("wallet").SetPassword("pw-wallet").SetProtocolVersion(4))
	if tok := phone.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatalf("phone: %v", tok.Error())
	}
	b.Cleanup(func() { phone.Disconnect(100) })
	if tok := phone.Subscribe("endcap/test/wallet/+", 1, func(_ mqtt.Client, m mqtt.Message) { got <- m.Topic() }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatalf("subscribe: %v", tok.Error())
	}
	var lat []time.Duration
	next := 0
	b.ResetTimer()
	for range b.N {
		for range perOp {
			id := fmt.Sprintf("shopper-%d", next)
			next++
			start := time.Now()
			res, err := s.SignIn(ctx, id, retail.SignInCard)
			if err != nil || !res.Published {
				b.Fatalf("sign-in: %+v %v", res, err)
			}
			select {
			case topic := <-got:
				if topic != "endcap/test/wallet/"+id {
					b.Fatalf("wallet message on %s", topic)
				}
			case <-time.After(10 * time.Second):
				b.Fatal("no wallet message")
			}
			lat = append(lat, time.Since(start))
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
}

type connWallet struct{ c *replication.Conn }

func (w connWallet) PublishWallet(ctx context.Context, customerID string, payload []byte) error {
	return w.c.Publish(ctx, replication.Topics{Region: "test"}.Wallet(customerID), payload, true)
}
