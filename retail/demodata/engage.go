package demodata

import (
	"fmt"
	"slices"

	"github.com/endcap/endcap/retail"
)

// couponLife is how long an issued coupon is valid.
const couponLife = 21 * day

// issueCoupon offers her a running promotion she is in the audience of
// (of type only, if set) with a coupon, and plans what she does with it:
// come back and use it, dismiss it, or let it lapse (the CRM marks most
// lapsed coupons expired). It returns nil if nothing is running for her.
func (g *gen) issueCoupon(at int64, ch retail.OfferChannel, st *site, actor retail.Actor, only retail.PromotionType) *held {
	c, r := &g.c, g.cr
	at = g.now(at)
	ps := g.running(at, func(p *promo) bool {
		return p.typ != retail.PromoSalePrice && (only == "" || p.typ == only) && g.fits(p, at)
	})
	if len(ps) == 0 {
		return nil
	}
	p := pick(r, ps)
	code := couponCode(g.n.coupon, g.key)
	g.n.coupon++
	h := &held{code: code, offer: g.offerID(), promo: p, issued: at, expires: at + couponLife, wantUse: chance(r, 0.6), outcome: retail.OutcomePending}
	body := &retail.IssueCoupon{Code: h.code, OfferID: h.offer, PromotionID: p.id, CustomerID: c.id, Channel: ch,
		ExpiresAt: msTime(h.expires)}
	if st != nil {
		body.StoreID = st.id
	}
	g.emit(at, actor, body, expAccepted)
	c.coupons = append(c.coupons, h)
	switch {
	case h.wantUse: // it brings her back
		back := at + between(r, 2, 19)*day
		if ch == retail.OfferApp || ch == retail.OfferEmail || ch == retail.OfferSMS || chance(r, 0.35) {
			g.q.push(back, func(at int64) { g.webOrder(at, webOpts{use: h}) })
		} else {
			g.q.push(back, func(at int64) { g.storeTrip(at, true, h) })
		}
	case chance(r, 0.3): // she dismisses it in the app
		g.q.push(at+between(r, 2, 10)*day, func(at int64) { g.offerOutcome(at, h, retail.OutcomeIgnored) })
	}
	g.q.push(h.expires+between(r, 1, 3)*day, func(at int64) {
		if chance(r, 0.75) {
			g.offerOutcome(at, h, retail.OutcomeExpired)
		}
	})
	return h
}

// offerOutcome records what became of a coupon's offer, if still pending.
func (g *gen) offerOutcome(at int64, h *held, o retail.OfferOutcome) {
	if h.used || h.outcome != retail.OutcomePending {
		return
	}
	g.emit(at, sys("crm"), &retail.RecordOfferOutcome{OfferID: h.offer, Outcome: o}, expAccepted)
	h.outcome = o
}

func (g *gen) offerID() string {
	g.n.offer++
	return fmt.Sprintf("off-%08d", g.n.offer)
}

func (g *gen) cartID() string {
	g.n.cart++
	return fmt.Sprintf("cart-%08d", g.n.cart)
}

// crmOffer: the CRM sends her an offer (no coupon) by a channel she agreed
// to. She answers it with a web order, ignores it, or lets it expire.
func (g *gen) crmOffer(at int64) {
	c, r := &g.c, g.cr
	at = g.now(at)
	ps := g.running(at, func(p *promo) bool { return p.typ != retail.PromoSalePrice && g.fits(p, at) })
	if len(ps) == 0 {
		return
	}
	p := pick(r, ps)
	var chs []retail.OfferChannel
	if c.contact.Email {
		chs = append(chs, retail.OfferEmail, retail.OfferEmail)
	}
	if c.contact.SMS {
		chs = append(chs, retail.OfferSMS)
	}
	if c.contact.Push {
		chs = append(chs, retail.OfferApp)
	}
	if c.contact.Mail {
		chs = append(chs, retail.OfferMail)
	}
	if len(chs) == 0 {
		chs = append(chs, retail.OfferWeb)
	}
	id := g.offerID()
	g.emit(at, sys("crm"), &retail.MakeOffer{ID: id, PromotionID: p.id, CustomerID: c.id, Channel: pick(r, chs)}, expAccepted)
	switch weighted(r, 20, 40, 25, 15) {
	case 0:
		g.q.push(at+between(r, 1, 11)*day, func(at int64) { g.webOrder(at, webOpts{offer: id}) })
	case 1:
		g.q.push(at+between(r, 3, 11)*day, func(at int64) {
			g.emit(at, sys("crm"), &retail.RecordOfferOutcome{OfferID: id, Outcome: retail.OutcomeIgnored}, expAccepted)
		})
	case 2:
		g.q.push(max(p.ends, at)+between(r, 1, 4)*day, func(at int64) {
			g.emit(at, sys("crm"), &retail.RecordOfferOutcome{OfferID: id, Outcome: retail.OutcomeExpired}, expAccepted)
		})
	}
}

// addWish saves a product to her wish list; she takes a third of them off
// again later (what she buys comes off when she buys it).
func (g *gen) addWish(at int64, st *site, src retail.WishSource) {
	c, r := &g.c, g.cr
	p := g.choose()
	actor := shopper(c.id)
	if src == retail.WishClerk && st != nil {
		actor = clerk(st.associate(r))
	}
	g.emit(at, actor, &retail.AddWishItem{CustomerID: c.id, SKU: g.products[p].sku, Source: src, Note: pick(r, wishNotes)}, expAccepted)
	if slices.Contains(c.wish, p) {
		return
	}
	c.wish = append(c.wish, p)
	if chance(r, 0.35) {
		g.q.push(g.last+between(r, 10, 150)*day, func(at int64) {
			for j, w := range c.wish {
				if w == p {
					c.wish = append(c.wish[:j], c.wish[j+1:]...)
					g.emit(at, shopper(c.id), &retail.RemoveWishItem{CustomerID: c.id, SKU: g.products[p].sku}, expAccepted)
					return
				}
			}
		})
	}
}

func (g *gen) cartEvent(at int64, cart string, ch retail.Channel, kind retail.CartEventKind, sku string, qty int64, step retail.CheckoutStep, order string) {
	g.n.cartEvent++
	id := fmt.Sprintf("ce-%09d", g.n.cartEvent)
	if kind == retail.CartView {
		cart = "" // browsing, outside a cart
	}
	g.emit(at, shopper(g.c.id), &retail.RecordCartEvent{ID: id, CartID: cart, CustomerID: g.c.id, Channel: ch, Kind: kind,
		SKU: sku, Qty: qty, Step: step, OrderID: order}, expAccepted)
}

// abandonCart: she fills a cart online (or at a store's kiosk) and leaves
// at some checkout step; one in ten comes back days later and buys.
func (g *gen) abandonCart(at int64) {
	r := g.cr
	ch := retail.ChannelWeb
	if chance(r, 0.15) {
		ch = retail.ChannelKiosk
		at = g.storeHours(at)
	}
	at = g.now(at)
	cart := g.cartID()
	lines := g.basket(at, 1+r.IntN(2))
	if chance(r, 0.4) {
		g.cartEvent(at, cart, ch, retail.CartView, lines[0].SKU, 0, retail.StepBrowse, "")
	}
	for _, l := range lines {
		g.cartEvent(at, cart, ch, retail.CartAdd, l.SKU, l.Qty, retail.StepCart, "")
	}
	step := []retail.CheckoutStep{retail.StepCart, retail.StepShipping, retail.StepPayment, retail.StepReview}[weighted(r, 40, 25, 22, 13)]
	if step != retail.StepCart {
		g.cartEvent(at, cart, ch, retail.CartCheckoutStep, "", 0, step, "")
	}
	if chance(r, 0.88) { // the rest stay open: she may yet come back
		g.cartEvent(g.last+between(r, 20, 90)*minute, cart, ch, retail.CartAbandon, "", 0, step, "")
	}
	if ch == retail.ChannelWeb && chance(r, 0.1) {
		g.q.push(g.last+between(r, 1, 5)*day, func(at int64) { g.webOrder(at, webOpts{cart: cart, lines: lines}) })
	}
}

// serviceContact: she gets in touch. A third are settled at once; most of
// the rest later, not always to her satisfaction; some stay open.
func (g *gen) serviceContact(at int64, reason string) {
	c, r := &g.c, g.cr
	g.n.contact++
	b := &retail.RecordServiceContact{ID: fmt.Sprintf("sc-%07d", g.n.contact), CustomerID: c.id, Reason: reason}
	b.Channel = []retail.ContactChannel{retail.ContactPhone, retail.ContactEmail, retail.ContactChat, retail.ContactStore,
		retail.ContactSocial}[weighted(r, 35, 25, 20, 12, 8)]
	actor := sys("social")
	switch b.Channel {
	case retail.ContactStore:
		at = g.storeHours(at)
		b.ClerkID, b.StoreID = c.home.associate(r), c.home.id
		actor = clerk(b.ClerkID)
	case retail.ContactSocial:
	default:
		b.ClerkID = pick(r, g.callCentre)
		actor = clerk(b.ClerkID)
	}
	if chance(r, 0.35) {
		b.Resolved, b.Satisfied = true, g.satisfaction()
	}
	b.Notes = pick(r, contactNotes)
	g.emit(at, actor, b, expAccepted)
	if !b.Resolved && chance(r, 0.88) {
		later := *b
		later.Resolved, later.Satisfied, later.Notes = true, g.satisfaction(), pick(r, contactNotes)
		g.q.push(g.last+between(r, 2, 120)*hour, func(at int64) { g.emit(at, actor, &later, expAccepted) })
	}
}

// satisfaction is her answer to "were you satisfied?", or nil if she was
// not asked or did not say.
func (g *gen) satisfaction() *bool {
	switch weighted(g.cr, 65, 22, 13) {
	case 0:
		t := true
		return &t
	case 1:
		f := false
		return &f
	}
	return nil
}

// storeOps: the stock changes that are no sale — shrink, damage, a cycle
// count, a transfer from the distribution centre. A few take a count the
// ledger says is already zero below zero: a stock discrepancy.
func (g *gen) storeOps(at int64) {
	r := g.cr
	st := pick(r, g.stores)
	at = g.now(g.storeHours(at))
	p := g.popular(r)
	sku := g.products[p].sku
	lv := g.lvl(st.idx, p)
	mgr := clerk(st.manager)
	switch weighted(r, 35, 20, 25, 20) {
	case 0, 1:
		reason := "shrink"
		if chance(r, 0.4) {
			reason = "damaged"
		}
		if lv.onHand < 1 && !chance(r, 0.2) {
			return
		}
		res := g.emit(at, mgr, &retail.AdjustStock{Location: st.id, SKU: sku, Delta: -1, Reason: reason}, expectFlag(lv.onHand < 1))
		lv.onHand--
		g.resolveLater(res, st)
	case 2:
		d := between(r, -3, 4)
		if d == 0 {
			d = 1
		}
		if lv.onHand+d < 0 {
			d = -lv.onHand
		}
		if d == 0 {
			return
		}
		g.emit(at, mgr, &retail.AdjustStock{Location: st.id, SKU: sku, Delta: d, Reason: "count"}, expAccepted)
		lv.onHand += d
	default:
		n := between(r, 6, 25)
		dl := g.lvl(g.dc.idx, p)
		if dl.onHand-dl.reserved < n {
			return
		}
		g.emit(at, sys("warehouse"), &retail.AdjustStock{Location: g.dc.id, SKU: sku, Delta: -n, Reason: "transfer"}, expAccepted)
		dl.onHand -= n
		g.emit(g.last+between(r, 4, 30)*hour, mgr, &retail.AdjustStock{Location: st.id, SKU: sku, Delta: n, Reason: "transfer"}, expAccepted)
		lv.onHand += n
	}
}

// resolveLater: a manager resolves most exceptions a fact raised within a
// week (now and then an associate tries first, and is refused). The rest
// stay open for the demo's exception queue.
func (g *gen) resolveLater(res retail.Result, st *site) {
	r := g.cr
	for _, e := range res.Exceptions {
		if !chance(r, 0.6) {
			continue
		}
		id, text := e.ID, exceptionResolutions[string(e.Kind)]
		if text == "" {
			text = "Reviewed and accepted."
		}
		g.q.push(g.last+between(r, 1, 7)*day, func(at int64) {
			at = g.now(g.storeHours(at))
			if len(st.associates) > 0 && chance(r, 0.04) {
				a := st.associate(r)
				g.emit(at, clerk(a), &retail.ResolveException{ExceptionID: id, ClerkID: a, Resolution: text}, expRejected)
			}
			g.emit(at, clerk(st.manager), &retail.ResolveException{ExceptionID: id, ClerkID: st.manager, Resolution: text}, expAccepted)
		})
	}
}

// queue is her pending events in time order (ties in the order pushed).
type queue struct {
	evs []event
	n   uint64
}

type event struct {
	at  int64
	n   uint64
	run func(at int64)
}

func (q *queue) reset()   { clear(q.evs); q.evs, q.n = q.evs[:0], 0 }
func (q *queue) len() int { return len(q.evs) }

func (e event) before(o event) bool { return e.at < o.at || e.at == o.at && e.n < o.n }

func (q *queue) push(at int64, run func(int64)) {
	q.n++
	q.evs = append(q.evs, event{at: at, n: q.n, run: run})
	for i := len(q.evs) - 1; i > 0; {
		p := (i - 1) / 2
		if !q.evs[i].before(q.evs[p]) {
			break
		}
		q.evs[i], q.evs[p] = q.evs[p], q.evs[i]
		i = p
	}
}

func (q *queue) pop() event {
	top := q.evs[0]
	last := len(q.evs) - 1
	q.evs[0] = q.evs[last]
	q.evs[last] = event{}
	q.evs = q.evs[:last]
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < len(q.evs) && q.evs[l].before(q.evs[m]) {
			m = l
		}
		if l+1 < len(q.evs) && q.evs[l+1].before(q.evs[m]) {
			m = l + 1
		}
		if m == i {
			break
		}
		q.evs[i], q.evs[m] = q.evs[m], q.evs[i]
		i = m
	}
	return top
}
