package retail

// Enumerations stored as text. Each has a Valid method used by Validate.

// Cents is an amount of money in the region's currency's minor unit.
type Cents = int64

type StoreKind string

const (
	KindStore StoreKind = "store"
	KindDC    StoreKind = "dc" // distribution centre
)

type Role string

const (
	RoleAssociate Role = "associate"
	RoleManager   Role = "manager" // may approve exceptions
	RoleAdmin     Role = "admin"   // may approve exceptions
)

// CanApprove reports whether a clerk with this role may approve exceptions.
func (r Role) CanApprove() bool { return r == RoleManager || r == RoleAdmin }

type Acquisition string

const (
	AcquiredWalkIn   Acquisition = "walk_in"
	AcquiredReferral Acquisition = "referral"
	AcquiredCampaign Acquisition = "campaign"
	AcquiredWeb      Acquisition = "web"
	AcquiredPhone    Acquisition = "phone"
)

type Channel string

const (
	ChannelWeb   Channel = "web"
	ChannelPhone Channel = "phone"
	ChannelStore Channel = "store"
	ChannelKiosk Channel = "kiosk"
)

type OrderStatus string

const (
	OrderCompleted OrderStatus = "completed" // carried out at a till
	OrderReserved  OrderStatus = "reserved"  // stock held where it ships from
	OrderFulfilled OrderStatus = "fulfilled" // shipped or picked up
	OrderCancelled OrderStatus = "cancelled"
)

type Fulfilment string

const (
	CarryOut    Fulfilment = "carry_out"
	ShipToHome  Fulfilment = "ship_to_home"
	StorePickup Fulfilment = "store_pickup"
)

type TenderKind string

const (
	TenderCash        TenderKind = "cash"
	TenderCard        TenderKind = "card"
	TenderGiftCard    TenderKind = "gift_card"
	TenderStoreCredit TenderKind = "store_credit"
)

type PromotionType string

const (
	PromoAmountOff        PromotionType = "amount_off"         // value in cents
	PromoPercentOff       PromotionType = "percent_off"        // value in basis points
	PromoFreeShipping     PromotionType = "free_shipping"      // value 0
	PromoFuturePercentOff PromotionType = "future_percent_off" // basis points off a later purchase
	PromoSalePrice        PromotionType = "sale_price"         // value is the price in cents
)

type Audience string

const (
	AudienceAll       Audience = "all"
	AudienceNew       Audience = "new"
	AudienceLapsed    Audience = "lapsed"
	AudienceLoyal     Audience = "loyal"
	AudienceHighValue Audience = "high_value"
	AudienceWishList  Audience = "wish_list"
	AudienceReturner  Audience = "returner"
)

type OfferChannel string

const (
	OfferStoreSignIn OfferChannel = "store_signin"
	OfferKiosk       OfferChannel = "kiosk"
	OfferClerk       OfferChannel = "clerk"
	OfferEmail       OfferChannel = "email"
	OfferSMS         OfferChannel = "sms"
	OfferApp         OfferChannel = "app"
	OfferWeb         OfferChannel = "web"
	OfferMail        OfferChannel = "mail"
)

type OfferOutcome string

const (
	OutcomePending  OfferOutcome = "pending"
	OutcomeRedeemed OfferOutcome = "redeemed"
	OutcomeIgnored  OfferOutcome = "ignored"
	OutcomeExpired  OfferOutcome = "expired"
)

type ContactChannel string

const (
	ContactPhone  ContactChannel = "phone"
	ContactEmail  ContactChannel = "email"
	ContactChat   ContactChannel = "chat"
	ContactStore  ContactChannel = "store"
	ContactSocial ContactChannel = "social"
)

type SignInMethod string

const (
	SignInCard  SignInMethod = "card"
	SignInPhone SignInMethod = "phone"
	SignInAppQR SignInMethod = "app_qr"
)

type WishSource string

const (
	WishKiosk WishSource = "kiosk"
	WishClerk WishSource = "clerk"
	WishWeb   WishSource = "web"
	WishApp   WishSource = "app"
)

type CartEventKind string

const (
	CartView         CartEventKind = "view"
	CartAdd          CartEventKind = "add"
	CartRemove       CartEventKind = "remove"
	CartCheckoutStep CartEventKind = "checkout_step"
	CartPurchase     CartEventKind = "purchase"
	CartAbandon      CartEventKind = "abandon"
)

type CheckoutStep string

const (
	StepBrowse   CheckoutStep = "browse"
	StepCart     CheckoutStep = "cart"
	StepShipping CheckoutStep = "shipping"
	StepPayment  CheckoutStep = "payment"
	StepReview   CheckoutStep = "review"
)

// ExceptionKind names a broken rule flagged on a fact.
type ExceptionKind string

const (
	ExStockDiscrepancy    ExceptionKind = "stock_discrepancy"    // count went below zero
	ExDuplicateRedemption ExceptionKind = "duplicate_redemption" // coupon already redeemed elsewhere
	ExExpiredCoupon       ExceptionKind = "expired_coupon"
	ExUnknownCoupon       ExceptionKind = "unknown_coupon"
	ExOverRefund          ExceptionKind = "over_refund"            // refund above what was paid (with that tender)
	ExOverReturnUnits     ExceptionKind = "over_return_units"      // more units than bought minus already returned
	ExTenderMismatch      ExceptionKind = "tender_mismatch"        // refund to another tender without approval
	ExPastReturnWindow    ExceptionKind = "past_return_window"     // without approval
	ExReceiptlessCap      ExceptionKind = "receiptless_cap"        // too many returns without an order
	ExCouponNotHers       ExceptionKind = "coupon_other_customer"  // used by someone it was not issued to
	ExUnapprovedApprover  ExceptionKind = "unauthorised_approval"  // approver is not a manager
	ExCreditOverdrawn     ExceptionKind = "store_credit_overdrawn" // paid with more store credit than she had
)

func oneOf[T ~string](v T, allowed ...T) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

func (k StoreKind) Valid() bool { return oneOf(k, KindStore, KindDC) }
func (r Role) Valid() bool      { return oneOf(r, RoleAssociate, RoleManager, RoleAdmin) }
func (a Acquisition) Valid() bool {
	return oneOf(a, AcquiredWalkIn, AcquiredReferral, AcquiredCampaign, AcquiredWeb, AcquiredPhone)
}
func (c Channel) Valid() bool    { return oneOf(c, ChannelWeb, ChannelPhone, ChannelStore, ChannelKiosk) }
func (f Fulfilment) Valid() bool { return oneOf(f, CarryOut, ShipToHome, StorePickup) }
func (k TenderKind) Valid() bool {
	return oneOf(k, TenderCash, TenderCard, TenderGiftCard, TenderStoreCredit)
}
func (t PromotionType) Valid() bool {
	return oneOf(t, PromoAmountOff, PromoPercentOff, PromoFreeShipping, PromoFuturePercentOff, PromoSalePrice)
}
func (a Audience) Valid() bool {
	return oneOf(a, AudienceAll, AudienceNew, AudienceLapsed, AudienceLoyal, AudienceHighValue, AudienceWishList, AudienceReturner)
}
func (c OfferChannel) Valid() bool {
	return oneOf(c, OfferStoreSignIn, OfferKiosk, OfferClerk, OfferEmail, OfferSMS, OfferApp, OfferWeb, OfferMail)
}
func (o OfferOutcome) Valid() bool {
	return oneOf(o, OutcomePending, OutcomeRedeemed, OutcomeIgnored, OutcomeExpired)
}
func (c ContactChannel) Valid() bool {
	return oneOf(c, ContactPhone, ContactEmail, ContactChat, ContactStore, ContactSocial)
}
func (m SignInMethod) Valid() bool { return oneOf(m, SignInCard, SignInPhone, SignInAppQR) }
func (s WishSource) Valid() bool   { return oneOf(s, WishKiosk, WishClerk, WishWeb, WishApp) }
func (k CartEventKind) Valid() bool {
	return oneOf(k, CartView, CartAdd, CartRemove, CartCheckoutStep, CartPurchase, CartAbandon)
}
func (s CheckoutStep) Valid() bool {
	return oneOf(s, StepBrowse, StepCart, StepShipping, StepPayment, StepReview)
}
