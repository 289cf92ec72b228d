package demodata

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/endcap/endcap/retail"
)

// customer is the shopper being generated: who she is, and what the region
// knows of her so far, so that each step of her history follows from the
// ones before.
type customer struct {
	i                int
	id               string
	since            int64 // customer since (may predate the timeline)
	from             int64 // when her record is made
	next             int64 // earliest time of her next mutation: her history is in time order
	home             *site
	name, email      string
	phone, card      string
	address, lang    string
	contact          retail.Contact
	acq              retail.Acquisition
	acqBy, acqStore  string
	homeStore        string // as recorded; some web shoppers name none
	pStore, pWeb     float64
	fav              [2]string
	serial           bool // a serial returner
	engagement       float64
	cards            []string
	orders, returns  int
	spend, lastOrder int64
	receiptless      []int64 // times of her returns without an order
	wish             []int
	coupons          []*held
}

// held is a coupon issued to her.
type held struct {
	code, offer string
	promo       *promo
	issued      int64
	expires     int64
	wantUse     bool
	used        bool // redeemed
	usedStore   string
	outcome     retail.OfferOutcome
}

// placed is an order, kept for its fulfilment and its return.
type placed struct {
	id      string
	at      int64
	lines   []retail.Line
	tenders []retail.Tender
	coupon  int64 // coupon discount
	total   int64
	from    *site // where stock is reserved, for an order placed for later
	store   *site // where it was bought or picked up
	ship    bool
}

// The share of the timeline the average customer is a customer for: half
// of them predate it, the others join uniformly across it.
const meanActiveShare = 0.75

func (g *gen) customer(i int) error {
	g.cpcg.Seed(splitmix64(g.key^uint64(i)), splitmix64(g.key+uint64(i)+0x632be59bd9b4e019))
	g.q.reset()
	g.newCustomer(i)
	c, r := &g.c, g.cr
	g.q.push(c.from, g.join)

	lam := g.cfg.OrdersPerCustomer * c.engagement * float64(g.end-c.from) / (meanActiveShare * float64(g.end-g.start))
	lo := c.from + hour
	g.sessions(poisson(r, lam), lo, g.purchase)
	g.sessions(poisson(r, lam*0.2*c.pStore), lo, func(at int64) { g.storeTrip(at, false, nil) })
	g.sessions(poisson(r, lam*0.3*(c.pWeb+0.1)), lo, g.abandonCart)
	g.sessions(poisson(r, lam*0.1), lo, func(at int64) {
		g.addWish(at, nil, pick(r, []retail.WishSource{retail.WishWeb, retail.WishApp}))
	})
	g.sessions(poisson(r, lam*0.03), lo, func(at int64) { g.serviceContact(at, pick(r, contactReasons)) })
	if c.contact.Email || c.contact.SMS || c.contact.Push || c.contact.Mail {
		g.sessions(poisson(r, lam*0.25), lo, g.crmOffer)
	}
	if c.serial {
		g.sessions(poisson(r, 0.3+lam*0.2), lo, g.returnSpree)
	} else {
		g.sessions(poisson(r, lam*0.01), lo, g.receiptlessReturn)
	}
	g.sessions(poisson(r, 0.01+lam*0.01), lo, g.storeOps)
	if chance(r, 0.04) {
		g.sessions(1, lo, g.profileUpdate)
	}

	for g.q.len() > 0 && g.err == nil {
		ev := g.q.pop()
		if ev.at >= g.horizon() {
			break // the rest has not happened yet
		}
		ev.run(ev.at)
	}
	g.finishCustomer()
	return g.err
}

// horizon is when the last event may start: two days before the end, so
// that what it does (moved into opening hours, a day later at most) is
// over before the timeline ends.
func (g *gen) horizon() int64 { return g.end - 2*day }

// sessions schedules n runs of fn at random times from lo to the horizon.
func (g *gen) sessions(n int, lo int64, fn func(int64)) {
	for range n {
		g.q.push(g.randomTime(lo, g.horizon()), fn)
	}
}

// randomTime is a random moment in [lo, hi): busier in November and
// December and at weekends.
func (g *gen) randomTime(lo, hi int64) int64 {
	r := g.cr
	for try := 0; ; try++ {
		t := between(r, lo, hi)
		if try == 4 {
			return t
		}
		lt := time.UnixMilli(t).In(g.loc)
		w := 0.55
		if m := lt.Month(); m == time.November || m == time.December {
			w = 1
		}
		if wd := lt.Weekday(); wd == time.Saturday || wd == time.Sunday {
			w += 0.2
		}
		if chance(r, w/1.2) {
			return t
		}
	}
}

// storeHours is the first moment at or after t in opening hours (9:00 to
// 20:00 local), give or take a random stretch of the day.
func (g *gen) storeHours(t int64) int64 {
	lt := time.UnixMilli(t).In(g.loc)
	h := lt.Hour()
	if h >= 9 && h < 20 {
		return t
	}
	d := lt
	if h >= 20 {
		d = d.AddDate(0, 0, 1)
	}
	return ms(time.Date(d.Year(), d.Month(), d.Day(), 9, 0, 0, 0, g.loc)) + g.cr.Int64N(11*hour)
}

// now is when her next mutation can happen, at or after at.
func (g *gen) now(at int64) int64 { return max(at, g.c.next) }

// emit applies one mutation (nothing, after a database error) at at, or
// just after her previous one if that is later.
func (g *gen) emit(at int64, actor retail.Actor, body retail.Body, want expect) retail.Result {
	if g.err != nil {
		return retail.Result{Status: retail.StatusRejected}
	}
	if g.c.id != "" {
		at = max(at, g.c.next)
		g.c.next = at + second
	}
	g.last = at
	res, err := g.w.apply(at, actor, body, want)
	if err != nil {
		g.err = err
	}
	return res
}

func expectFlag(flagged bool) expect {
	if flagged {
		return expFlagged
	}
	return expAccepted
}

func (g *gen) newCustomer(i int) {
	c, r := &g.c, g.cr
	*c = customer{i: i, id: customerID(i), cards: c.cards[:0], receiptless: c.receiptless[:0], wish: c.wish[:0], coupons: c.coupons[:0]}
	n := g.cfg.Customers
	span := g.end - g.start
	t0 := g.start - span
	last := g.end - 7*day
	c.since = t0 + int64((float64(i)+r.Float64())/float64(n)*float64(last-t0))
	c.from = c.since
	if c.since < g.start { // imported over the region's first two days
		c.from = g.start + int64(float64(c.since-t0)/float64(g.start-t0)*float64(2*day))
	}
	x := r.Float64() * g.cumLast()
	c.home = g.stores[len(g.stores)-1]
	for k, v := range g.storeCum {
		if x < v {
			c.home = g.stores[k]
			break
		}
	}
	first, lastName := pick(r, firstNames), pick(r, lastNames)
	c.name = first + " " + lastName
	if chance(r, 0.85) {
		c.email = fmt.Sprintf("%s.%s%d@%s", asciiLower(first), asciiLower(lastName), i+1, pick(r, emailDomains))
	}
	if chance(r, 0.85) {
		c.phone = phoneNumber(c.home.area, i, g.key)
	}
	if chance(r, 0.7) {
		c.card = loyaltyCard(i)
	}
	c.address = fmt.Sprintf("%d %s, %s", 100+r.IntN(9900), pick(r, streets), c.home.city)
	c.lang = []string{"en", "es", "fr", "zh", "vi"}[weighted(r, 86, 9, 2, 2, 1)]
	c.contact = retail.Contact{
		Email: c.email != "" && chance(r, 0.7),
		SMS:   c.phone != "" && chance(r, 0.35),
		Push:  chance(r, 0.3),
		Mail:  chance(r, 0.15),
	}
	c.acq = []retail.Acquisition{retail.AcquiredWalkIn, retail.AcquiredReferral, retail.AcquiredCampaign,
		retail.AcquiredWeb, retail.AcquiredPhone}[weighted(r, 40, 15, 15, 20, 10)]
	if c.acq == retail.AcquiredReferral && i == 0 {
		c.acq = retail.AcquiredWalkIn
	}
	c.homeStore = c.home.id
	switch c.acq {
	case retail.AcquiredWalkIn:
		c.acqBy, c.acqStore = c.home.associate(r), c.home.id
	case retail.AcquiredReferral:
		c.acqBy = customerID(r.IntN(i)) // any earlier customer: ids are a function of the index
		if chance(r, 0.5) {
			c.acqStore = c.home.id
		}
	case retail.AcquiredCampaign:
		ps := g.running(c.since, func(p *promo) bool { return p.audience == retail.AudienceNew })
		if len(ps) == 0 {
			c.acq = retail.AcquiredWeb
			break
		}
		c.acqBy = pick(r, ps).id
		if chance(r, 0.5) {
			c.acqStore = c.home.id
		}
	case retail.AcquiredWeb:
		if chance(r, 0.1) {
			c.homeStore = ""
		}
	}
	switch weighted(r, 45, 35, 20) {
	case 0: // shops in store
		c.pStore, c.pWeb = 0.85, 0.12
	case 1:
		c.pStore, c.pWeb = 0.55, 0.38
	default: // shops online
		c.pStore, c.pWeb = 0.15, 0.77
	}
	if c.acq == retail.AcquiredPhone {
		c.pStore, c.pWeb = c.pStore*0.8, c.pWeb*0.8
	}
	c.fav[0], c.fav[1] = pick(r, g.catNames), pick(r, g.catNames)
	c.serial = chance(r, 0.03)
	c.engagement = min(6, r.ExpFloat64())
	for k := range 1 + weighted(r, 7, 3) {
		c.cards = append(c.cards, cardToken(g.key, i, k))
	}
}

func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return -1
	}, s)
}

func (g *gen) upsertBody() *retail.UpsertCustomer {
	c := &g.c
	return &retail.UpsertCustomer{ID: c.id, Name: c.name, Email: c.email, Phone: c.phone, LoyaltyCard: c.card,
		Since: time.UnixMilli(c.since).UTC(), AcquiredVia: c.acq, AcquiredBy: c.acqBy, AcquiredStore: c.acqStore,
		HomeStore: c.homeStore, Contact: c.contact, Language: c.lang}
}

// join makes her record: imported, signed up at a till or on the phone,
// or by herself online.
func (g *gen) join(at int64) {
	c := &g.c
	actor := shopper(c.id)
	switch {
	case c.since < g.start:
		actor = sys("import")
	case c.acq == retail.AcquiredWalkIn:
		actor = clerk(c.acqBy)
	case c.acq == retail.AcquiredPhone:
		actor = clerk(pick(g.cr, g.callCentre))
	}
	g.emit(at, actor, g.upsertBody(), expAccepted)
}

// profileUpdate: she changes how she may be contacted, or moves.
func (g *gen) profileUpdate(at int64) {
	c, r := &g.c, g.cr
	c.contact.Email = c.email != "" && !c.contact.Email
	c.contact.Push = chance(r, 0.5)
	if chance(r, 0.3) {
		c.home = pick(r, g.stores)
		c.homeStore = c.home.id
		c.address = fmt.Sprintf("%d %s, %s", 100+r.IntN(9900), pick(r, streets), c.home.city)
	}
	g.emit(at, shopper(c.id), g.upsertBody(), expAccepted)
}

func (g *gen) finishCustomer() {
	c := &g.c
	for _, h := range c.coupons {
		if !h.used && len(g.ring) < 64 {
			g.ring = append(g.ring, ringCoupon{code: h.code, issued: h.issued, expires: h.expires, promo: h.promo, valid: true})
		} else if !h.used {
			g.ring[g.ringNext] = ringCoupon{code: h.code, issued: h.issued, expires: h.expires, promo: h.promo, valid: true}
			g.ringNext = (g.ringNext + 1) % len(g.ring)
		}
	}
	c.id = ""
}

// fits reports whether she is in the promotion's audience at at.
func (g *gen) fits(p *promo, at int64) bool {
	c := &g.c
	switch p.audience {
	case retail.AudienceNew:
		return at-c.since < 90*day
	case retail.AudienceLapsed:
		return c.orders > 0 && at-c.lastOrder > 120*day
	case retail.AudienceLoyal:
		return c.orders >= 4
	case retail.AudienceHighValue:
		return c.spend >= 50_000
	case retail.AudienceWishList:
		return len(c.wish) > 0
	case retail.AudienceReturner:
		return c.returns+len(c.receiptless) > 0
	}
	return true
}

func skuIndex(sku string) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(sku, "SKU-"))
	return n - 1
}

// choose picks a product for her: from her favourite categories half the
// time, otherwise the region's best sellers.
func (g *gen) choose() int {
	r := g.cr
	if chance(r, 0.5) {
		if list := g.byCat[g.c.fav[r.IntN(2)]]; len(list) > 0 {
			return pick(r, list)
		}
	}
	return g.popular(r)
}

// basket is n different products (and now and then a complement of the
// first), with the sale prices running at at.
func (g *gen) basket(at int64, n int) []retail.Line {
	r := g.cr
	var ps []int
	for try := 0; len(ps) < n && try < 3*n; try++ {
		if p := g.choose(); !slices.Contains(ps, p) {
			ps = append(ps, p)
		}
	}
	if comps := g.products[ps[0]].complements; len(comps) > 0 && chance(r, 0.25) {
		if p := pick(r, comps); !slices.Contains(ps, p) {
			ps = append(ps, p)
		}
	}
	lines := make([]retail.Line, len(ps))
	for k, p := range ps {
		qty := int64(1 + weighted(r, 80, 15, 5))
		lines[k] = retail.Line{SKU: g.products[p].sku, Qty: qty, UnitPriceCents: g.products[p].price,
			DiscountCents: g.saleDiscount(at, p) * qty}
	}
	return lines
}

func basketSize(r *rand.Rand) int {
	x := r.Float64()
	switch {
	case x < 0.5:
		return 1
	case x < 0.78:
		return 2
	case x < 0.92:
		return 3
	}
	return 4
}

// ensure has a delivery arrive at s when fewer than qty of p are
// available there: twice the shelf level, as the warehouse sends it.
func (g *gen) ensure(at int64, s *site, p int, qty int64) {
	l := g.lvl(s.idx, p)
	if avail := l.onHand - l.reserved; avail < qty {
		delta := 2*g.par(s, p) + qty - avail
		g.emit(at, sys("warehouse"), &retail.AdjustStock{Location: s.id, SKU: g.products[p].sku, Delta: delta, Reason: "received"}, expAccepted)
		l.onHand += delta
	}
}

// couponDiscount is what the promotion takes off these lines, and whether
// it applies to them at all.
func (g *gen) couponDiscount(p *promo, lines []retail.Line, ship bool) (int64, bool) {
	var net, catNet int64
	for _, l := range lines {
		n := l.Qty*l.UnitPriceCents - l.DiscountCents
		net += n
		if g.products[skuIndex(l.SKU)].category == p.category {
			catNet += n
		}
	}
	switch p.typ {
	case retail.PromoAmountOff:
		if net == 0 || net < p.minOrder {
			return 0, false
		}
		return min(p.value, net), true
	case retail.PromoPercentOff:
		base := net
		if p.category != "" {
			base = catNet
		}
		d := base * p.value / 10000
		return d, d > 0
	case retail.PromoFreeShipping:
		return 0, ship && net >= p.minOrder
	case retail.PromoFuturePercentOff:
		d := net * p.value / 10000
		return d, d > 0
	}
	return 0, false
}

// usable finds a coupon of hers she means to use now on these lines:
// prefer if it applies, else any.
func (g *gen) usable(at int64, prefer *held, lines []retail.Line, ship bool) (*held, int64) {
	try := func(h *held) (int64, bool) {
		if h == nil || h.used || !h.wantUse || h.outcome != retail.OutcomePending || at >= h.expires {
			return 0, false
		}
		return g.couponDiscount(h.promo, lines, ship)
	}
	if d, ok := try(prefer); ok {
		return prefer, d
	}
	for _, h := range g.c.coupons {
		if d, ok := try(h); ok {
			return h, d
		}
	}
	return nil, 0
}

func (g *gen) tenders(total int64, store bool) []retail.Tender {
	c, r := &g.c, g.cr
	if total == 0 {
		return nil
	}
	card := retail.Tender{Kind: retail.TenderCard, AmountCents: total, CardToken: pick(r, c.cards)}
	x := r.Float64()
	switch {
	case store && x < 0.2:
		return []retail.Tender{{Kind: retail.TenderCash, AmountCents: total}}
	case x >= 0.2 && x < 0.24:
		return []retail.Tender{{Kind: retail.TenderGiftCard, AmountCents: total}}
	case x >= 0.24 && x < 0.29 && total > 2500:
		card.AmountCents -= 2500
		return []retail.Tender{{Kind: retail.TenderGiftCard, AmountCents: 2500}, card}
	}
	return []retail.Tender{card}
}

func (g *gen) orderID() string {
	g.n.order++
	return fmt.Sprintf("ord-%08d", g.n.order)
}

// bought books an order against her history.
func (g *gen) bought(p *placed) {
	c := &g.c
	c.orders++
	c.spend += p.total
	c.lastOrder = p.at
	for _, l := range p.lines {
		k := skuIndex(l.SKU)
		for j, w := range c.wish {
			if w == k {
				c.wish = append(c.wish[:j], c.wish[j+1:]...)
				g.emit(p.at+minute, sys("wishlist"), &retail.RemoveWishItem{CustomerID: c.id, SKU: l.SKU}, expAccepted)
				break
			}
		}
	}
}

// purchase is a shopping trip that ends in an order, in her usual channel.
func (g *gen) purchase(at int64) {
	c := &g.c
	switch weighted(g.cr, c.pStore, c.pWeb, max(0, 1-c.pStore-c.pWeb)) {
	case 0:
		g.storeTrip(at, true, nil)
	case 1:
		g.webOrder(at, webOpts{})
	default:
		g.phoneOrder(at)
	}
}

// storeTrip: she signs in at a store (if she can be recognised), perhaps
// gets a coupon at the sign-in screen, saves something to her wish list,
// orders from the endless aisle, and (if buy) pays at the till.
func (g *gen) storeTrip(at int64, buy bool, prefer *held) {
	c, r := &g.c, g.cr
	st := c.home
	if chance(r, 0.15) {
		st = pick(r, g.stores)
	}
	at = g.now(g.storeHours(at))
	if (c.card != "" || c.phone != "") && chance(r, 0.75) {
		method := retail.SignInPhone
		switch {
		case c.contact.Push && chance(r, 0.5):
			method = retail.SignInAppQR
		case c.card != "" && (c.phone == "" || chance(r, 0.7)):
			method = retail.SignInCard
		}
		g.n.visit++
		g.emit(at, shopper(c.id), &retail.RecordVisit{ID: fmt.Sprintf("vis-%08d", g.n.visit), CustomerID: c.id, StoreID: st.id, Method: method}, expAccepted)
		at += between(r, 2, 15) * minute
		if chance(r, 0.15) {
			ch := retail.OfferStoreSignIn
			if chance(r, 0.3) {
				ch = retail.OfferKiosk
			}
			g.issueCoupon(at, ch, st, shopper(c.id), "")
			at += minute
		}
	}
	if chance(r, 0.05) {
		src := retail.WishKiosk
		if chance(r, 0.4) {
			src = retail.WishClerk
		}
		g.addWish(at, st, src)
		at += 3 * minute
	}
	if buy && chance(r, 0.06) {
		g.kioskOrder(at, st)
		at += 5 * minute
	}
	if buy {
		g.tillSale(at+between(r, 5, 40)*minute, st, prefer)
	}
}

// tillSale rings up a basket at st, taking what is on the shelf.
func (g *gen) tillSale(at int64, st *site, prefer *held) {
	c, r := &g.c, g.cr
	at = g.now(at)
	clk := st.associate(r)
	lines := g.basket(at, basketSize(r))
	short := false // a line the ledger says is not there: the count is wrong somewhere
	for _, l := range lines {
		p := skuIndex(l.SKU)
		lv := g.lvl(st.idx, p)
		if lv.onHand-lv.reserved < l.Qty && chance(r, 0.02) {
			short = short || lv.onHand < l.Qty
			continue
		}
		g.ensure(at, st, p, l.Qty)
	}
	at = g.now(at)

	o := retail.Order{ID: g.orderID(), CustomerID: c.id, Channel: retail.ChannelStore, StoreID: st.id, ClerkID: clk,
		Fulfilment: retail.CarryOut, Lines: lines}
	flagged := short
	var use *held
	var ring *ringCoupon
	if h, d := g.usable(at, prefer, lines, false); h != nil {
		use = h
		o.Coupons = []retail.CouponUse{{Code: h.code, DiscountCents: d}}
	} else if cu, rc := g.oddCoupon(at, st, lines); cu != nil {
		o.Coupons = []retail.CouponUse{*cu}
		ring, flagged = rc, true
	}
	_, _, total := o.Totals()
	o.Tenders = g.tenders(total, true)
	res := g.emit(at, clerk(clk), &retail.RecordSale{Order: o}, expectFlag(flagged))
	p := &placed{id: o.ID, at: g.last, lines: lines, tenders: o.Tenders, total: total, store: st}
	for _, l := range lines {
		g.lvl(st.idx, skuIndex(l.SKU)).onHand -= l.Qty
	}
	if len(o.Coupons) > 0 {
		p.coupon = o.Coupons[0].DiscountCents
	}
	if use != nil {
		use.used, use.usedStore, use.outcome = true, st.id, retail.OutcomeRedeemed
	}
	if ring != nil {
		ring.valid = false
	}
	g.resolveLater(res, st)
	g.bought(p)
	g.afterPurchase(p)
	// "20% off your next visit", printed on the receipt.
	if chance(r, 0.15) {
		g.issueCoupon(g.last+minute, retail.OfferClerk, st, clerk(clk), retail.PromoFuturePercentOff)
	}
}

// oddCoupon is now and then a coupon a till takes though it should not: one
// she already used at another store while the tills were offline, one that
// expired, a paper coupon the region never issued, or a friend's (a coupon
// an earlier customer left unused). Each is flagged when the sale is applied.
func (g *gen) oddCoupon(at int64, st *site, lines []retail.Line) (*retail.CouponUse, *ringCoupon) {
	c, r := &g.c, g.cr
	for _, h := range c.coupons {
		if h.used && h.usedStore != st.id && at < h.expires && chance(r, 0.2) {
			if d, ok := g.couponDiscount(h.promo, lines, false); ok {
				return &retail.CouponUse{Code: h.code, DiscountCents: d}, nil
			}
		}
		if !h.used && at >= h.expires && at < h.expires+30*day && chance(r, 0.15) {
			if d, ok := g.couponDiscount(h.promo, lines, false); ok {
				return &retail.CouponUse{Code: h.code, DiscountCents: d}, nil
			}
		}
	}
	if chance(r, 0.003) {
		var net int64
		for _, l := range lines {
			net += l.Qty*l.UnitPriceCents - l.DiscountCents
		}
		if net >= 500 {
			return &retail.CouponUse{Code: fmt.Sprintf("PAPER-%05d", r.IntN(100000)), DiscountCents: 500}, nil
		}
	}
	if chance(r, 0.004) {
		for k := range g.ring {
			rc := &g.ring[k]
			if rc.valid && rc.issued < at && at < rc.expires {
				if d, ok := g.couponDiscount(rc.promo, lines, false); ok {
					return &retail.CouponUse{Code: rc.code, DiscountCents: d}, rc
				}
			}
		}
	}
	return nil, nil
}

// afterPurchase: she may come back with it, or get in touch about it.
func (g *gen) afterPurchase(p *placed) {
	c, r := &g.c, g.cr
	pr := 0.06
	if c.serial {
		pr = 0.45
	}
	if chance(r, pr) {
		delay := between(r, 1, 29) * day
		if chance(r, 0.12) {
			delay = between(r, 31, 61) * day // past the return window
		}
		g.q.push(p.at+delay+r.Int64N(day), func(at int64) { g.returnOrder(at, p) })
	}
	if chance(r, 0.03) {
		g.q.push(p.at+between(r, 1, 10)*day, func(at int64) {
			g.serviceContact(at, pick(r, []string{"product question", "damaged item", "refund status"}))
		})
	}
}

type webOpts struct {
	offer string // an offer she is answering
	cart  string // a cart she comes back to
	lines []retail.Line
	use   *held // a coupon that brought her
}

// webOrder: she orders online (through a tracked cart 40% of the time), for
// delivery or pickup at her store.
func (g *gen) webOrder(at int64, o webOpts) {
	c, r := &g.c, g.cr
	at = g.now(at)
	lines := o.lines
	if lines == nil {
		lines = g.basket(at, basketSize(r))
	}
	cart := o.cart
	if cart == "" && chance(r, 0.4) {
		cart = g.cartID()
		for _, l := range lines {
			if chance(r, 0.2) {
				g.cartEvent(at, cart, retail.ChannelWeb, retail.CartView, l.SKU, 0, retail.StepBrowse, "")
			}
			g.cartEvent(at, cart, retail.ChannelWeb, retail.CartAdd, l.SKU, l.Qty, retail.StepCart, "")
		}
		if len(lines) > 1 && chance(r, 0.1) {
			l := lines[len(lines)-1]
			g.cartEvent(at, cart, retail.ChannelWeb, retail.CartRemove, l.SKU, l.Qty, retail.StepCart, "")
			lines = lines[:len(lines)-1]
		}
	}
	if cart != "" {
		g.cartEvent(at, cart, retail.ChannelWeb, retail.CartCheckoutStep, "", 0, retail.StepReview, "")
	}
	// With a coupon that brought her back, her app now and then redeems it
	// on its own after checkout instead of with the order.
	wallet := o.use != nil && chance(r, 0.5)
	spec := orderSpec{channel: retail.ChannelWeb, actor: shopper(c.id), lines: lines, ship: chance(r, 0.7), use: o.use,
		badCoupon: 0.02, noCoupon: wallet}
	if !spec.ship {
		spec.pickup = c.home
	}
	p := g.placeOrder(g.last+minute, spec)
	if p == nil {
		return
	}
	if cart != "" {
		g.cartEvent(p.at, cart, retail.ChannelWeb, retail.CartPurchase, "", 0, retail.StepReview, p.id)
	}
	if wallet {
		at := g.now(p.at + minute)
		if h, _ := g.usable(at, o.use, p.lines, spec.ship); h != nil {
			g.emit(at, shopper(c.id), &retail.RedeemCoupon{Code: h.code, CustomerID: c.id, OrderID: p.id}, expAccepted)
			h.used, h.outcome = true, retail.OutcomeRedeemed
		}
	}
	if o.offer != "" {
		g.emit(p.at+minute, sys("crm"), &retail.RecordOfferOutcome{OfferID: o.offer, Outcome: retail.OutcomeRedeemed, OrderID: p.id}, expAccepted)
	}
}

// phoneOrder: a call-centre agent takes her order, then redeems a coupon
// code she reads out.
func (g *gen) phoneOrder(at int64) {
	c, r := &g.c, g.cr
	at = g.now(at)
	agent := pick(r, g.callCentre)
	spec := orderSpec{channel: retail.ChannelPhone, clerk: agent, actor: clerk(agent), lines: g.basket(at, basketSize(r)), ship: chance(r, 0.85), noCoupon: true}
	if !spec.ship {
		spec.pickup = c.home
	}
	p := g.placeOrder(at, spec)
	if p == nil {
		return
	}
	at = g.now(p.at + 2*minute)
	if h, _ := g.usable(at, nil, p.lines, spec.ship); h != nil {
		g.emit(at, clerk(agent), &retail.RedeemCoupon{Code: h.code, CustomerID: c.id, OrderID: p.id}, expAccepted)
		h.used, h.outcome = true, retail.OutcomeRedeemed
		return
	}
	for _, h := range c.coupons {
		if h.used && at < h.expires && chance(r, 0.5) { // she reads out a code she already used
			g.emit(at, clerk(agent), &retail.RedeemCoupon{Code: h.code, CustomerID: c.id, OrderID: p.id}, expRejected)
			return
		}
	}
}

// kioskOrder: the endless aisle. What she wants is not on the shelf, so she
// orders it at the kiosk, shipped home or for pickup here. Now and then the
// kiosk's stock is stale and the first location it tries is refused.
func (g *gen) kioskOrder(at int64, st *site) {
	c, r := &g.c, g.cr
	at = g.now(at)
	lines := g.basket(at, 1+r.IntN(2))
	spec := orderSpec{channel: retail.ChannelKiosk, store: st, actor: shopper(c.id), lines: lines, ship: chance(r, 0.55), noCoupon: true, from: g.dc}
	if !spec.ship {
		spec.pickup = st
	}
	if len(g.stores) > 1 && chance(r, 0.05) {
		other := g.stores[(st.idx+1+r.IntN(len(g.stores)-1))%len(g.stores)]
		p := skuIndex(lines[0].SKU)
		if lv := g.lvl(other.idx, p); lv.onHand-lv.reserved < 3 {
			lines[0].Qty = max(lv.onHand-lv.reserved, 0) + 1
			lines[0].DiscountCents = g.saleDiscount(at, p) * lines[0].Qty
			spec.id = g.orderID()
			stale := spec
			stale.from, stale.reject = other, true
			g.placeOrder(at, stale)
		}
	}
	g.placeOrder(at, spec)
}

type orderSpec struct {
	id        string // reuse an id a refused attempt had
	channel   retail.Channel
	store     *site // where she placed it (kiosk)
	clerk     string
	actor     retail.Actor
	lines     []retail.Line
	ship      bool
	pickup    *site
	from      *site
	use       *held
	noCoupon  bool
	badCoupon float64 // chance she first tries a coupon that is refused
	reject    bool    // the caller knows it is refused (stock)
}

// placeOrder places an order for later fulfilment and schedules what
// follows it. It returns nil if the order was (as expected) refused.
func (g *gen) placeOrder(at int64, s orderSpec) *placed {
	c, r := &g.c, g.cr
	if s.id == "" {
		s.id = g.orderID()
	}
	from := s.from
	if from == nil {
		from = g.dc
		if s.pickup != nil {
			from = s.pickup
			for _, l := range s.lines {
				if lv := g.lvl(s.pickup.idx, skuIndex(l.SKU)); lv.onHand-lv.reserved < l.Qty {
					from = g.dc
					break
				}
			}
		}
	}
	if !s.reject {
		for _, l := range s.lines {
			g.ensure(at, from, skuIndex(l.SKU), l.Qty)
		}
	}
	at = g.now(at)
	o := retail.Order{ID: s.id, CustomerID: c.id, Channel: s.channel, ClerkID: s.clerk, FulfilFrom: from.id, Lines: s.lines}
	if s.store != nil {
		o.StoreID = s.store.id
	}
	if s.ship {
		o.Fulfilment, o.ShipAddress = retail.ShipToHome, c.address
		eta := time.UnixMilli(at + between(r, 3, 6)*day).UTC().Truncate(24 * time.Hour)
		o.ExpectedAt = &eta
	} else {
		o.Fulfilment, o.PickupStore = retail.StorePickup, s.pickup.id
	}
	var use *held
	if !s.noCoupon && !s.reject {
		if s.badCoupon > 0 && chance(r, s.badCoupon) {
			// She tries a coupon she already used, or one that expired: refused.
			for _, h := range c.coupons {
				if h.used || at >= h.expires {
					bad := o
					bad.Coupons = []retail.CouponUse{{Code: h.code}}
					_, _, total := bad.Totals()
					bad.Tenders = g.tenders(total, false)
					g.emit(at, s.actor, &retail.PlaceOrder{Order: bad}, expRejected)
					at = g.now(at + 2*minute)
					break
				}
			}
		}
		if h, d := g.usable(at, s.use, s.lines, s.ship); h != nil {
			use = h
			o.Coupons = []retail.CouponUse{{Code: h.code, DiscountCents: d}}
		}
	}
	_, _, total := o.Totals()
	o.Tenders = g.tenders(total, false)
	want := expAccepted
	if s.reject {
		want = expRejected
	}
	res := g.emit(at, s.actor, &retail.PlaceOrder{Order: o}, want)
	if s.reject || res.Status == retail.StatusRejected {
		return nil
	}
	for _, l := range s.lines {
		g.lvl(from.idx, skuIndex(l.SKU)).reserved += l.Qty
	}
	p := &placed{id: o.ID, at: g.last, lines: s.lines, tenders: o.Tenders, total: total, from: from, store: s.pickup, ship: s.ship}
	if use != nil {
		p.coupon = o.Coupons[0].DiscountCents
		use.used, use.outcome = true, retail.OutcomeRedeemed
		if s.store != nil {
			use.usedStore = s.store.id
		}
	}
	g.bought(p)
	g.scheduleFulfil(p)
	return p
}

// scheduleFulfil: most orders ship or are picked up within days; a few are
// cancelled. Those still due at the end of the timeline stay reserved.
func (g *gen) scheduleFulfil(p *placed) {
	r := g.cr
	if chance(r, 0.04) {
		g.q.push(p.at+between(r, 1, 20)*hour, func(at int64) {
			g.emit(at, shopper(g.c.id), &retail.FulfilOrder{OrderID: p.id, Status: retail.OrderCancelled}, expAccepted)
			for _, l := range p.lines {
				lv := g.lvl(p.from.idx, skuIndex(l.SKU))
				lv.reserved = max(lv.reserved-l.Qty, 0)
			}
		})
		return
	}
	delay := between(r, 1, 4) * day
	if !p.ship && p.from != g.dc {
		delay = between(r, 2, 48) * hour // waiting on the shelf
	}
	g.q.push(p.at+delay, func(at int64) {
		at = g.now(at)
		actor := sys("warehouse")
		if p.from.kind == retail.KindStore {
			at = g.now(g.storeHours(at))
			actor = clerk(p.from.associate(r))
		}
		flagged := false
		for _, l := range p.lines {
			if g.lvl(p.from.idx, skuIndex(l.SKU)).onHand < l.Qty {
				flagged = true
			}
		}
		res := g.emit(at, actor, &retail.FulfilOrder{OrderID: p.id, Status: retail.OrderFulfilled}, expectFlag(flagged))
		for _, l := range p.lines {
			lv := g.lvl(p.from.idx, skuIndex(l.SKU))
			lv.onHand -= l.Qty
			lv.reserved = max(lv.reserved-l.Qty, 0)
		}
		g.resolveLater(res, p.from)
		g.afterPurchase(p)
	})
}

// returnOrder: she brings back some of an order. Most returns are clean;
// some are late (a manager approves most of those), some refund to another
// tender, and serial returners now and then bring back more than they
// bought.
func (g *gen) returnOrder(at int64, p *placed) {
	c, r := &g.c, g.cr
	st := c.home
	if p.store != nil && chance(r, 0.7) {
		st = p.store
	}
	at = g.now(g.storeHours(at))
	clk := st.associate(r)
	var net int64
	for _, l := range p.lines {
		net += l.Qty*l.UnitPriceCents - l.DiscountCents
	}
	overUnits := c.serial && chance(r, 0.08)
	var lines []retail.ReturnLine
	var sum int64
	for k, j := range r.Perm(len(p.lines))[:1+r.IntN(len(p.lines))] {
		l := p.lines[j]
		q := l.Qty
		if q > 1 && chance(r, 0.5) {
			q = 1 + r.Int64N(l.Qty-1)
		}
		if overUnits && k == 0 {
			q = l.Qty + 1
		}
		refund := (l.Qty*l.UnitPriceCents - l.DiscountCents) * q / l.Qty
		if p.coupon > 0 && net > 0 {
			refund -= p.coupon * refund / net
		}
		lines = append(lines, retail.ReturnLine{OrderLineNo: int64(j + 1), SKU: l.SKU, Qty: q, RefundCents: refund})
		sum += refund
	}
	var best retail.Tender
	for _, t := range p.tenders {
		if t.AmountCents > best.AmountCents {
			best = t
		}
	}
	approver := ""
	var refund retail.Tender
	switch {
	case best.AmountCents == 0:
		refund = retail.Tender{Kind: retail.TenderStoreCredit}
		approver = st.manager
	case best.Kind == retail.TenderCard && chance(r, 0.02): // cash back for a card payment, without asking
		refund = retail.Tender{Kind: retail.TenderCash}
	case best.AmountCents >= sum:
		refund = best
	default: // paid with two tenders: store credit, which a manager approves
		refund = retail.Tender{Kind: retail.TenderStoreCredit}
		approver = st.manager
	}
	refund.AmountCents = sum
	late := at > p.at+g.window*day
	if late && chance(r, 0.6) {
		approver = st.manager
	}
	if approver != "" && chance(r, 0.03) {
		approver = clk // an associate approves: that does not count
	}
	approved := approver != "" && approver == st.manager
	var paidWith int64
	for _, t := range p.tenders {
		if t.Kind == refund.Kind && t.CardToken == refund.CardToken {
			paidWith += t.AmountCents
		}
	}
	flagged := overUnits || (approver != "" && !approved) || sum > p.total ||
		(paidWith == 0 && !approved) || (paidWith > 0 && sum > paidWith) || (late && !approved)
	reason := pick(r, returnReasons)
	restock := reason != "damaged" && reason != "defective" && chance(r, 0.9)
	g.n.ret++
	res := g.emit(at, clerk(clk), &retail.ReturnItems{ID: fmt.Sprintf("ret-%07d", g.n.ret), OrderID: p.id, CustomerID: c.id,
		StoreID: st.id, ClerkID: clk, Reason: reason, WithReceipt: chance(r, 0.85), Lines: lines, Refund: refund,
		ApprovedBy: approver, Restock: restock}, expectFlag(flagged))
	if restock {
		for _, l := range lines {
			g.lvl(st.idx, skuIndex(l.SKU)).onHand += l.Qty
		}
	}
	c.returns++
	g.resolveLater(res, st)
	if chance(r, 0.04) {
		g.q.push(g.last+between(r, 1, 6)*day, func(at int64) { g.serviceContact(at, "refund status") })
	}
}

// returnSpree: a serial returner brings back several things without a
// receipt within a few weeks, going over the receipt-less cap.
func (g *gen) returnSpree(at int64) {
	r := g.cr
	n := 2 + r.IntN(4)
	for k := range n {
		g.q.push(at+int64(k)*between(r, 2, 10)*day, g.receiptlessReturn)
	}
}

// receiptlessReturn: something comes back with no order to tie it to.
func (g *gen) receiptlessReturn(at int64) {
	c, r := &g.c, g.cr
	st := c.home
	at = g.now(g.storeHours(at))
	clk := st.associate(r)
	p := g.choose()
	price := g.products[p].price
	approver := ""
	if chance(r, 0.25) {
		approver = st.manager
	}
	kind := retail.TenderStoreCredit
	if chance(r, 0.3) {
		kind = retail.TenderCash
	}
	recent := 0
	for _, t := range c.receiptless {
		if t > at-g.capDays*day {
			recent++
		}
	}
	flagged := approver == "" && (kind != retail.TenderStoreCredit || int64(recent+1) > g.capCount)
	restock := chance(r, 0.7)
	g.n.ret++
	res := g.emit(at, clerk(clk), &retail.ReturnItems{ID: fmt.Sprintf("ret-%07d", g.n.ret), CustomerID: c.id, StoreID: st.id,
		ClerkID: clk, Reason: pick(r, returnReasons), Lines: []retail.ReturnLine{{SKU: g.products[p].sku, Qty: 1, RefundCents: price}},
		Refund: retail.Tender{Kind: kind, AmountCents: price}, ApprovedBy: approver, Restock: restock}, expectFlag(flagged))
	if restock {
		g.lvl(st.idx, p).onHand++
	}
	c.receiptless = append(c.receiptless, g.last)
	g.resolveLater(res, st)
}
