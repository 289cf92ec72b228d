package demodata

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/endcap/endcap/retail"
)

// gen is one generation run: the region's fixed parts (stores, clerks,
// catalogue, promotions), the generator's ledger of stock, id counters, and
// the customer being generated.
type gen struct {
	cfg        Config
	seed, key  uint64
	loc        *time.Location
	start, end int64 // the timeline, unix ms
	w          *writer
	err        error // the first database error; everything stops at it

	r    *rand.Rand // the region's stream: stores, catalogue, promotions
	cpcg rand.PCG   // the customer's stream, reseeded for each customer
	cr   *rand.Rand

	stores     []*site // the stores; the distribution centre is dc
	dc         *site
	storeCum   []float64 // cumulative store sizes, for home stores
	products   []*product
	sellable   []int // indexes of active products
	popCum     []float64
	byCat      map[string][]int // sellable products by category
	catNames   []string
	byQuarter  map[int][]*promo // by the quarter they start in
	stock      []level          // by location*len(products)+product
	n          counters
	ring       []ringCoupon // recent coupons other shoppers left unused
	ringNext   int
	c          customer
	q          queue
	last       int64    // time of the last mutation applied
	callCentre []string // the distribution centre's associates
	// The region's policies (set_setting): the return window, and the cap on
	// returns without an order (count within days).
	window, capCount, capDays int64
}

// site is a store or the distribution centre.
type site struct {
	idx        int // location index into the stock ledger
	id, name   string
	city, area string
	kind       retail.StoreKind
	manager    string
	associates []string
}

func (s *site) associate(r *rand.Rand) string { return pick(r, s.associates) }

type product struct {
	sku, name   string
	category    string
	price       int64
	active      bool
	par         int64 // shelf level a store restocks to
	complements []int
}

type promo struct {
	id       string
	name     string
	typ      retail.PromotionType
	value    int64
	sku      int // -1: none
	category string
	audience retail.Audience
	minOrder int64
	starts   int64
	ends     int64
	active   bool
}

func (p *promo) runs(at int64) bool { return p.active && p.starts <= at && at < p.ends }

// level is the generator's ledger of one product at one location: what
// Apply's inventory row holds, so orders are placed only against stock the
// region has.
type level struct{ onHand, reserved int64 }

type counters struct {
	order, ret, visit, offer, coupon, cart, cartEvent, contact uint64
}

type ringCoupon struct {
	code            string
	issued, expires int64
	promo           *promo
	valid           bool
}

func (g *gen) lvl(loc, p int) *level { return &g.stock[loc*len(g.products)+p] }

func sys(id string) retail.Actor     { return retail.Actor{Kind: "system", ID: id} }
func clerk(id string) retail.Actor   { return retail.Actor{Kind: "clerk", ID: id} }
func shopper(id string) retail.Actor { return retail.Actor{Kind: "customer", ID: id} }
func (g *gen) quarter(at int64) int { // quarters since year 0
	t := time.UnixMilli(at).UTC()
	return t.Year()*4 + (int(t.Month())-1)/3
}

// setup makes the region's fixed parts: stores and the distribution centre,
// clerks, the catalogue, promotions, and the opening stock.
func (g *gen) setup() error {
	r := g.r
	t := g.start - 450*day // before the first promotion is made
	tick := func() int64 { t += minute; return t }

	// The region's policies.
	g.window, g.capCount, g.capDays = 30, 3, 45
	for _, s := range []retail.SetSetting{
		{Key: "return_window_days", Value: g.window},
		{Key: "receiptless_cap_count", Value: g.capCount},
		{Key: "receiptless_cap_days", Value: g.capDays},
	} {
		g.emit(tick(), sys("setup"), &s, expAccepted)
	}

	// Stores and the distribution centre.
	for i := range g.cfg.Stores {
		s := storeSites[i%len(storeSites)]
		name := s.name
		if i >= len(storeSites) {
			name = fmt.Sprintf("%s %d", s.name, i/len(storeSites)+1)
		}
		g.stores = append(g.stores, &site{idx: i, id: storeID(i), name: name, city: s.city, area: s.area, kind: retail.KindStore})
		g.storeCum = append(g.storeCum, g.cumLast()+1/math.Sqrt(float64(i+1)))
	}
	g.dc = &site{idx: len(g.stores), id: dcID, name: "Northwest Distribution Centre", city: "Kent", area: "253", kind: retail.KindDC}
	for _, s := range append(g.stores[:len(g.stores):len(g.stores)], g.dc) {
		addr := fmt.Sprintf("%d %s, %s", 100+r.IntN(9000), pick(r, streets), s.city)
		g.emit(tick(), sys("setup"), &retail.UpsertStore{ID: s.id, Kind: s.kind, Name: s.name, Region: g.cfg.Region,
			Address: addr, Timezone: g.loc.String()}, expAccepted)
	}

	// Clerks: region staff, then per location a manager and associates, one
	// of whom has left (inactive).
	if err := g.addClerk(tick(), adminID, "", retail.RoleAdmin, true); err != nil {
		return err
	}
	for _, s := range append(g.stores[:len(g.stores):len(g.stores)], g.dc) {
		s.manager = clerkID(s.id, 1)
		if err := g.addClerk(tick(), s.manager, s.id, retail.RoleManager, true); err != nil {
			return err
		}
		n := 4 + r.IntN(4)
		for k := 2; k <= n+1; k++ {
			id := clerkID(s.id, k)
			active := k <= n
			if err := g.addClerk(tick(), id, s.id, retail.RoleAssociate, active); err != nil {
				return err
			}
			if active {
				s.associates = append(s.associates, id)
			}
		}
	}
	g.callCentre = g.dc.associates

	// The catalogue.
	g.byCat = map[string][]int{}
	for _, c := range categories {
		g.catNames = append(g.catNames, c.name)
	}
	perm := r.Perm(g.cfg.Products) // popularity rank
	var popTotal float64
	for i := range g.cfg.Products {
		ci := r.IntN(len(categories))
		cat := categories[ci]
		noun := pick(r, cat.nouns)
		name := fmt.Sprintf("%s %s, %s", pick(r, productAdjectives), noun, pick(r, productColours))
		price := between(r, cat.lo/100, cat.hi/100)*100 - 1 // prices end in .99
		p := &product{sku: productSKU(i), name: name, category: cat.name, price: price, active: i == 0 || !chance(r, 0.03)}
		rank := perm[i]
		switch {
		case rank < g.cfg.Products/10:
			p.par = 30
		case rank < g.cfg.Products*4/10:
			p.par = 12
		default:
			p.par = 6
		}
		// Complements are earlier products of the categories that go with it.
		for range r.IntN(3) {
			for try := 0; try < 6 && i > 0; try++ {
				j := r.IntN(i)
				if q := g.products[j]; q.active && slices.Contains(cat.goesWith, q.category) && !slices.Contains(p.complements, j) {
					p.complements = append(p.complements, j)
					break
				}
			}
		}
		barcodes := []string{barcode(i, 0)}
		if chance(r, 0.15) {
			barcodes = append(barcodes, barcode(i, 1)) // new packaging, new barcode
		}
		comps := make([]string, len(p.complements))
		for k, j := range p.complements {
			comps[k] = g.products[j].sku
		}
		g.products = append(g.products, p)
		desc := fmt.Sprintf("%s from our %s range.", noun, cat.name)
		g.emit(tick(), sys("catalog"), &retail.UpsertProduct{SKU: p.sku, Name: p.name, Description: desc, Category: p.category,
			PriceCents: p.price, Active: p.active, Barcodes: barcodes, Complements: comps}, expAccepted)
		if p.active {
			g.sellable = append(g.sellable, i)
			g.byCat[p.category] = append(g.byCat[p.category], i)
			popTotal += 1 / math.Pow(float64(rank+5), 0.9)
			g.popCum = append(g.popCum, popTotal)
		}
	}
	if len(g.sellable) == 0 {
		return fmt.Errorf("the catalogue has no active product")
	}
	g.stock = make([]level, (len(g.stores)+1)*len(g.products))

	if err := g.makePromotions(); err != nil {
		return err
	}

	// Opening stock, the day before the region goes live.
	t = g.start - day
	for _, s := range append(g.stores[:len(g.stores):len(g.stores)], g.dc) {
		for _, p := range g.sellable {
			par := g.par(s, p)
			t += second
			g.emit(t, sys("warehouse"), &retail.AdjustStock{Location: s.id, SKU: g.products[p].sku, Delta: par, Reason: "received"}, expAccepted)
			g.lvl(s.idx, p).onHand += par
		}
	}
	return g.err
}

func (g *gen) cumLast() float64 {
	if len(g.storeCum) == 0 {
		return 0
	}
	return g.storeCum[len(g.storeCum)-1]
}

func (g *gen) addClerk(at int64, id, store string, role retail.Role, active bool) error {
	h, err := pinHash(g.seed, id)
	if err != nil {
		return err
	}
	name := pick(g.r, firstNames) + " " + pick(g.r, lastNames)
	g.emit(at, sys("setup"), &retail.UpsertClerk{ID: id, StoreID: store, Name: name, Role: role, PINHash: h, Active: active}, expAccepted)
	return g.err
}

// par is the level a location restocks a product to.
func (g *gen) par(s *site, p int) int64 {
	if s.kind == retail.KindDC {
		return g.products[p].par * 15
	}
	return g.products[p].par
}

// popular picks a sellable product, best sellers most often.
func (g *gen) popular(r *rand.Rand) int {
	x := r.Float64() * g.popCum[len(g.popCum)-1]
	i := sort.SearchFloat64s(g.popCum, x)
	return g.sellable[min(i, len(g.sellable)-1)]
}

// makePromotions makes every quarter's campaigns, from a year before the
// timeline (customers acquired by an older campaign name it) to its end:
// promotions of every type, audiences in rotation, now and then one
// cancelled before it ran.
func (g *gen) makePromotions() error {
	r := g.r
	g.byQuarter = map[int][]*promo{}
	first := time.UnixMilli(g.start).UTC().AddDate(-1, 0, 0)
	q := time.Date(first.Year(), time.Month((int(first.Month())-1)/3*3+1), 1, 8, 0, 0, 0, time.UTC)
	seasons := []string{"Winter", "Spring", "Summer", "Autumn"}
	for k := 0; ms(q) < g.end; k++ {
		label := fmt.Sprintf("%d-q%d", q.Year(), (int(q.Month())-1)/3+1)
		season := seasons[(int(q.Month())-1)/3]
		rot := func(as ...retail.Audience) retail.Audience { return as[k%len(as)] }
		cat := pick(r, g.catNames)
		sale := g.popular(r)
		salePrice := g.products[sale].price * 3 / 4 / 100 * 100
		templates := []promo{
			{name: "$10 off $50", typ: retail.PromoAmountOff, value: 1000, minOrder: 5000,
				audience: rot(retail.AudienceAll, retail.AudienceLoyal, retail.AudienceLapsed, retail.AudienceHighValue)},
			{name: "15% off " + cat, typ: retail.PromoPercentOff, value: 1500, category: cat,
				audience: rot(retail.AudienceAll, retail.AudienceWishList, retail.AudienceNew, retail.AudienceReturner)},
			{name: "Free shipping over $35", typ: retail.PromoFreeShipping, minOrder: 3500, audience: retail.AudienceAll},
			{name: "20% off your next visit", typ: retail.PromoFuturePercentOff, value: 2000,
				audience: rot(retail.AudienceNew, retail.AudienceLapsed, retail.AudienceLoyal)},
			{name: g.products[sale].name + " sale", typ: retail.PromoSalePrice, value: salePrice, sku: sale, audience: retail.AudienceAll},
			{name: season + " welcome: $5 off", typ: retail.PromoAmountOff, value: 500, audience: retail.AudienceNew},
			{name: "Thank you: 10% off", typ: retail.PromoPercentOff, value: 1000,
				audience: rot(retail.AudienceHighValue, retail.AudienceReturner, retail.AudienceLoyal, retail.AudienceWishList)},
		}
		for j, p := range templates {
			p.id = fmt.Sprintf("promo-%s-%d", label, j+1)
			if p.typ != retail.PromoSalePrice {
				p.sku = -1
			}
			p.starts = ms(q) + r.Int64N(21)*day
			if j == 5 { // acquisition campaigns run the whole quarter
				p.starts = ms(q)
				p.ends = ms(q.AddDate(0, 3, 0))
			} else {
				p.ends = p.starts + (21+r.Int64N(50))*day
			}
			p.active = !chance(r, 0.06)
			pp := &p
			g.byQuarter[g.quarter(p.starts)] = append(g.byQuarter[g.quarter(p.starts)], pp)
			body := &retail.UpsertPromotion{ID: p.id, Name: p.name, PromoType: p.typ, Value: p.value, Category: p.category,
				Audience: p.audience, MinOrderCents: p.minOrder, StartsAt: time.UnixMilli(p.starts).UTC(),
				EndsAt: time.UnixMilli(p.ends).UTC(), Active: p.active}
			if p.sku >= 0 {
				body.SKU = g.products[p.sku].sku
			}
			g.emit(p.starts-7*day, clerk(adminID), body, expAccepted)
		}
		q = q.AddDate(0, 3, 0)
	}
	return g.err
}

// running lists the promotions running at at that satisfy ok.
func (g *gen) running(at int64, ok func(*promo) bool) []*promo {
	var out []*promo
	q := g.quarter(at)
	for _, qq := range []int{q - 1, q} {
		for _, p := range g.byQuarter[qq] {
			if p.runs(at) && ok(p) {
				out = append(out, p)
			}
		}
	}
	return out
}

// salePrice is the line discount per unit a running sale price gives.
func (g *gen) saleDiscount(at int64, p int) int64 {
	for _, pr := range g.running(at, func(pr *promo) bool { return pr.typ == retail.PromoSalePrice && pr.sku == p }) {
		if d := g.products[p].price - pr.value; d > 0 {
			return d
		}
	}
	return 0
}
