package edge

import (
	"context"
	"fmt"
	"reflect"
	"testing"
)

// The suggestions for Ann's baskets (annRegion says where each figure
// comes from). Her average order is 4125.
func TestCrossSell(t *testing.T) {
	ctx := context.Background()
	s := annStore(t)
	for _, tc := range []struct {
		name     string
		customer string
		basket   []BasketLine
		want     []string // sku: why (stock here)
		basketC  int64
		average  int64
		below    bool
	}{
		{
			// In stock here first: the shoe bag on her wish list, then
			// what goes with the shoe (laces she has not bought before
			// socks she has); the jacket (wish list) and the wax
			// (co-purchase) have no stock here and do not make the 3.
			name: "a shoe, above her average", customer: "cust-ann", basket: []BasketLine{{"SKU-1", 1}},
			want: []string{
				"SKU-BAG: on her wish list (5)",
				"SKU-LACE: goes with Trail shoe (10)",
				"SKU-2: goes with Trail shoe (999999)", // 1,000,000 - 2 sold + 1 returned
			},
			basketC: 8000, average: 4125,
		},
		{
			// 1200 < 4125: up to 6, and the hat others bought with socks.
			name: "socks, below her average", customer: "cust-ann", basket: []BasketLine{{"SKU-2", 1}},
			want: []string{
				"SKU-BAG: on her wish list (5)",
				"SKU-LAST: on her wish list (0)",
				"SKU-HAT: bought with Socks by 67% of buyers (0)",
			},
			basketC: 1200, average: 4125, below: true,
		},
		{
			// Nothing in the basket: from what she bought most, leaving out
			// what she has.
			name: "empty basket: from her history", customer: "cust-ann",
			want: []string{
				"SKU-BAG: on her wish list (5)",
				"SKU-LACE: goes with her Trail shoe (10)",
				"SKU-LAST: on her wish list (0)",
				"SKU-WAX: bought with Trail shoe by 38% of buyers (0)",
			},
			average: 4125, below: true,
		},
		{
			// What is in the basket is never suggested; two lines of one
			// SKU count as one.
			name: "the bag already in the basket", customer: "cust-ann", basket: []BasketLine{{"SKU-1", 1}, {"SKU-BAG", 1}, {"SKU-1", 1}},
			want: []string{
				"SKU-LACE: goes with Trail shoe (10)",
				"SKU-2: goes with Trail shoe (999999)",
				"SKU-LAST: on her wish list (0)",
			},
			basketC: 17500, average: 4125,
		},
		{
			// Not signed in: no wish list, no average; everyone's orders
			// are in the sample, Ann's too: wax in 3 of 9.
			name: "a shoe, anonymous shopper", basket: []BasketLine{{"SKU-1", 2}},
			want: []string{
				"SKU-2: goes with Trail shoe (999999)",
				"SKU-LACE: goes with Trail shoe (10)",
				"SKU-WAX: bought with Trail shoe by 33% of buyers (0)",
			},
			basketC: 16000,
		},
		{
			// Socks alone bring the hat (bought with socks by 2 of 3), but
			// a basket of more than 3 products samples the 3 of most value
			// and the socks are the cheapest.
			name: "a big basket, anonymous", basket: []BasketLine{{"SKU-LAST", 1}, {"SKU-TEE", 1}, {"SKU-BAG", 1}, {"SKU-2", 1}},
			basketC: 24700,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := s.CrossSell(ctx, tc.customer, tc.basket)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, sg := range res.Suggestions {
				got = append(got, fmt.Sprintf("%s: %s (%d)", sg.SKU, sg.Why, sg.StockHere))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("suggestions\n got  %q\n want %q", got, tc.want)
			}
			if res.BasketCents != tc.basketC || res.AverageOrderCents != tc.average || res.BelowAverage != tc.below || res.Suppressed {
				t.Errorf("basket %d average %d below %v suppressed %v; want %d %d %v false",
					res.BasketCents, res.AverageOrderCents, res.BelowAverage, res.Suppressed, tc.basketC, tc.average, tc.below)
			}
		})
	}
}

func TestCrossSellSuggestionFields(t *testing.T) {
	s := annStore(t)
	res, err := s.CrossSell(context.Background(), "cust-ann", []BasketLine{{"SKU-2", 1}})
	if err != nil {
		t.Fatal(err)
	}
	want := []Suggestion{
		{SKU: "SKU-BAG", Name: "Shoe bag", PriceCents: 1500, StockHere: 5, Source: "wish_list", Why: "on her wish list"},
		{SKU: "SKU-LAST", Name: "Last jacket", PriceCents: 20000, Source: "wish_list", Why: "on her wish list"},
		{SKU: "SKU-HAT", Name: "Sun hat", PriceCents: 2500, Source: "co_purchase", Why: "bought with Socks by 67% of buyers", For: "SKU-2"},
	}
	if !reflect.DeepEqual(res.Suggestions, want) {
		t.Errorf("got  %+v\nwant %+v", res.Suggestions, want)
	}
}

// A serial returner gets no suggestions, and the clerk is told why.
func TestCrossSellSuppressed(t *testing.T) {
	s := annStore(t)
	for _, tc := range []struct {
		customer, reason string
	}{
		{"cust-rita", "No suggestions for a serial returner: she returned 3 of 4 units bought (75%) in 3 returns."},
		{"cust-quinn", "No suggestions for a serial returner: she made 2 returns without a receipt in the last 45 days; the cap is 3."},
	} {
		t.Run(tc.customer, func(t *testing.T) {
			res, err := s.CrossSell(context.Background(), tc.customer, []BasketLine{{"SKU-1", 1}})
			if err != nil {
				t.Fatal(err)
			}
			if !res.Suppressed || res.Reason != tc.reason || len(res.Suggestions) != 0 || res.Suggestions == nil {
				t.Errorf("suppressed %v, reason %q, suggestions %v; want the reason %q and none", res.Suppressed, res.Reason, res.Suggestions, tc.reason)
			}
		})
	}
	// Sam returned exactly 30%: not above the threshold, so she gets them.
	res, err := s.CrossSell(context.Background(), "cust-sam", []BasketLine{{"SKU-1", 1}})
	if err != nil || res.Suppressed || len(res.Suggestions) == 0 {
		t.Errorf("Sam: %+v, %v", res, err)
	}
}

func TestCrossSellRefusals(t *testing.T) {
	s := annStore(t)
	for _, tc := range []struct {
		name, customer string
		basket         []BasketLine
		err            error
		msg            string
	}{
		{"unknown customer", "cust-nobody", []BasketLine{{"SKU-1", 1}}, ErrUnknownCustomer, ""},
		{"unknown product", "cust-ann", []BasketLine{{"SKU-1", 1}, {"SKU-NOPE", 1}}, ErrUnknownProduct,
			"No product SKU-NOPE in this region; scan it again or key the SKU."},
		{"no quantity", "cust-ann", []BasketLine{{"SKU-1", 0}}, ErrInvalid, "Basket line 1 needs a SKU and a quantity of at least 1."},
		{"no sku", "cust-ann", []BasketLine{{"", 1}}, ErrInvalid, ""},
		{"empty basket, nobody signed in", "", nil, ErrEmptyBasket, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CrossSell(context.Background(), tc.customer, tc.basket)
			cxWantCode(t, err, tc.err)
			if tc.msg != "" && err.Error() != tc.msg {
				t.Errorf("message %q, want %q", err, tc.msg)
			}
		})
	}
}
