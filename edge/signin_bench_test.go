package edge

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
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
//
// The region: ENDCAP_BENCH_DB names a demodata database (cmd/demodata),
// which is copied to a temp dir, given four promotions running now (the
// demo's campaigns end with its timeline), and opened as its first
// store's replica; the shoppers are its own customers, with their
// histories, spread evenly over it. Without it, the scenario region plus
// 100 new shoppers an op.
func BenchmarkSignInToWallet(b *testing.B) {
	if src := os.Getenv("ENDCAP_BENCH_DB"); src != "" {
		s, shoppers := signInBenchRegion(b, src)
		b.Run("region", func(b *testing.B) {
			if n := b.N * signInPerOp; n > len(shoppers) {
				b.Fatalf("%d sign-ins, %d shoppers: ask for at most -benchtime %dx", n, len(shoppers), len(shoppers)/signInPerOp)
			}
			signInToWallet(b, s, shoppers)
		})
		return
	}
	var extra []retail.Body
	var shoppers []string
	for i := range (b.N + 1) * signInPerOp {
		id := fmt.Sprintf("shopper-%d", i)
		shoppers = append(shoppers, id)
		extra = append(extra, &retail.UpsertCustomer{ID: id, Name: "Shopper", Since: scenario.T0.AddDate(-1, 0, 0),
			AcquiredVia: retail.AcquiredWalkIn, AcquiredStore: "S1"})
	}
	s, _, _ := testStore(b, extra...)
	s.now = time.Now // coupons valid from now
	signInToWallet(b, s, shoppers)
}

// signInPerOp is the sign-ins of one op; signInBenchShoppers the shoppers
// taken from an ENDCAP_BENCH_DB region (-benchtime up to 50x).
const (
	signInPerOp         = 100
	signInBenchShoppers = 5000
)

// signInToWallet runs b.N ops of signInPerOp sign-ins by the next of
// shoppers at s, each until the phone has her coupons.
func signInToWallet(b *testing.B, s *Store, shoppers []string) {
	ctx := context.Background()
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
	coupons := 0
	next := 0
	cpu0 := cxCPUTime()
	b.ResetTimer()
	for range b.N {
		for range signInPerOp {
			id := shoppers[next]
			next++
			start := time.Now()
			res, err := s.SignIn(ctx, id, retail.SignInCard)
			if err != nil || !res.Published {
				b.Fatalf("sign-in of %s: %+v %v", id, res, err)
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
			coupons += len(res.Coupons)
		}
	}
	b.StopTimer()
	cpu := cxCPUTime() - cpu0
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
	b.ReportMetric(float64(cpu)/1e6/float64(len(lat)), "cpu-ms/signin")
	b.ReportMetric(float64(coupons)/float64(len(lat)), "coupons/signin")
}

// signInBenchRegion copies the demodata region at src, adds promotions
// running now for every shopper, loyal ones and high-value ones, opens it
// as its first store's replica, and picks signInBenchShoppers customers
// spread evenly over it by rowid.
func signInBenchRegion(b *testing.B, src string) (*Store, []string) {
	b.Helper()
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "replica.db")
	t0 := time.Now()
	if err := copySaleBenchFile(src, path); err != nil {
		b.Fatal(err)
	}
	db, err := retail.Open(ctx, path, retail.Options{Durability: retail.DurabilityNormal})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	promos := []*retail.UpsertPromotion{
		{ID: "bench-signin-1", Name: "$10 off $50", PromoType: retail.PromoAmountOff, Value: 1000, MinOrderCents: 5000, Audience: retail.AudienceAll},
		{ID: "bench-signin-2", Name: "Free shipping over $35", PromoType: retail.PromoFreeShipping, MinOrderCents: 3500, Audience: retail.AudienceAll},
		{ID: "bench-signin-3", Name: "20% off your next visit", PromoType: retail.PromoFuturePercentOff, Value: 2000, Audience: retail.AudienceLoyal},
		{ID: "bench-signin-4", Name: "Thank you: 10% off", PromoType: retail.PromoPercentOff, Value: 1000, Audience: retail.AudienceHighValue},
	}
	err = db.Update(ctx, func(tx *retail.Tx) error {
		for i, p := range promos {
			p.StartsAt, p.EndsAt, p.Active = now.Add(-24*time.Hour), now.Add(30*24*time.Hour), true
			res, err := retail.Apply(ctx, tx, retail.Mutation{ID: retail.MutationID{Origin: "bench-signin", Seq: uint64(i + 1)},
				HLC: retail.HLC{Wall: now.UnixMilli()}, Actor: retail.Actor{Kind: "system", ID: "bench"}, Body: p})
			if err != nil {
				return err
			}
			if res.Status == retail.StatusRejected {
				return fmt.Errorf("promotion %s rejected: %s", p.ID, res.Reason)
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	var store string
	var maxRow int64
	if err := db.QueryRowContext(ctx, "SELECT id FROM stores WHERE kind = 'store' ORDER BY id LIMIT 1").Scan(&store); err != nil {
		b.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, "SELECT max(rowid) FROM customers").Scan(&maxRow); err != nil {
		b.Fatal(err)
	}
	var shoppers []string
	for i := range int64(signInBenchShoppers) {
		var id string
		if err := db.QueryRowContext(ctx, "SELECT id FROM customers WHERE rowid >= ? ORDER BY rowid LIMIT 1", 1+i*maxRow/signInBenchShoppers).Scan(&id); err != nil {
			b.Fatal(err)
		}
		if len(shoppers) == 0 || shoppers[len(shoppers)-1] != id {
			shoppers = append(shoppers, id)
		}
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	rep, err := replication.OpenReplica(ctx, replication.ReplicaConfig{Path: path, Region: "bench", Edge: store})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rep.Close() })
	s, err := NewStore(StoreConfig{StoreID: store, Replica: rep, CouponKey: testKey})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("region: a copy of %s, store %s, %d shoppers spread over %d customer rows; ready in %s",
		src, store, len(shoppers), maxRow, time.Since(t0).Round(time.Second))
	return s, shoppers
}

type connWallet struct{ c *replication.Conn }

func (w connWallet) PublishWallet(ctx context.Context, customerID string, payload []byte) error {
	return w.c.Publish(ctx, replication.Topics{Region: "test"}.Wallet(customerID), payload, true)
}
