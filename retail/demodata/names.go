package demodata

// Word lists for names, places and products. Every e-mail domain is one
// reserved for examples (RFC 2606), and phone numbers are made up.

var firstNames = []string{
	"Ava", "Ben", "Carmen", "Dana", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jada",
	"Kai", "Lena", "Mateo", "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tariq",
	"Uma", "Victor", "Wen", "Ximena", "Yusuf", "Zoe", "Aisha", "Bruno", "Chloe", "Diego",
	"Elena", "Finn", "Grace", "Hugo", "Isla", "Jonah", "Keiko", "Leo", "Maya", "Nikhil",
	"Olivia", "Pablo", "Ruth", "Sofia", "Theo", "Valeria", "Will", "Yara", "Amir", "Bianca",
	"Caleb", "Daria", "Emeka", "Freya", "Gabriel", "Helen", "Ines", "Jamal", "Kira", "Luis",
}

var lastNames = []string{
	"Adams", "Baker", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Hughes", "Ito", "Johnson",
	"Kim", "Lopez", "Martin", "Nguyen", "Okafor", "Patel", "Quinn", "Rossi", "Singh", "Tanaka",
	"Usman", "Varga", "Walker", "Xu", "Yilmaz", "Zhang", "Alvarez", "Brown", "Cohen", "Dubois",
	"Ekström", "Flores", "Gupta", "Hansen", "Ivanova", "Jensen", "Kowalski", "Larsen", "Moreau", "Novak",
	"O'Brien", "Park", "Reyes", "Schmidt", "Torres", "Ueda", "Vasquez", "Wright", "Young", "Zimmer",
}

var emailDomains = []string{"example.com", "example.net", "example.org"}

var streets = []string{
	"Oak St", "Maple Ave", "Cedar Ln", "Pine St", "Elm St", "Birch Rd", "Harbor Way", "Hillside Dr",
	"River Rd", "Lake St", "Park Ave", "Mill St", "Spruce Ct", "Willow Way", "Main St", "2nd Ave",
}

// storeSites are the region's store names, cities and area codes.
var storeSites = []struct{ name, city, area string }{
	{"Downtown", "Portland", "503"},
	{"Riverside Mall", "Portland", "971"},
	{"Eastgate", "Gresham", "503"},
	{"Harbor Point", "Seattle", "206"},
	{"Westfield Plaza", "Beaverton", "971"},
	{"Northside", "Vancouver", "360"},
	{"Old Town", "Tacoma", "253"},
	{"Lakeshore", "Bellevue", "425"},
	{"Hillcrest", "Salem", "503"},
	{"University Ave", "Eugene", "541"},
	{"Airport Plaza", "SeaTac", "206"},
	{"Southpark", "Olympia", "360"},
}

// categories are the catalogue: product nouns, a price range in cents, and
// the categories whose products go with them (complements).
var categories = []struct {
	name     string
	nouns    []string
	lo, hi   int64
	goesWith []string
}{
	{"footwear", []string{"Trail Runner", "Canvas Sneaker", "Leather Boot", "Sandal", "Slipper", "Rain Boot"}, 2500, 16000, []string{"accessories", "footwear"}},
	{"apparel", []string{"Rain Jacket", "Fleece Pullover", "Cotton Tee", "Chino", "Wool Sweater", "Hoodie", "Puffer Vest"}, 1500, 20000, []string{"accessories", "apparel"}},
	{"accessories", []string{"Wool Socks", "Cap", "Gloves", "Scarf", "Belt", "Sunglasses", "Tote Bag"}, 800, 6000, []string{"apparel"}},
	{"outdoor", []string{"Tent", "Sleeping Bag", "Headlamp", "Water Bottle", "Backpack", "Camp Stove", "Trekking Poles"}, 1500, 40000, []string{"outdoor", "apparel"}},
	{"kitchen", []string{"Chef Knife", "Cast Iron Skillet", "French Press", "Mixing Bowl Set", "Cutting Board", "Kettle", "Spice Rack"}, 1200, 15000, []string{"kitchen", "home"}},
	{"electronics", []string{"Wireless Earbuds", "Phone Charger", "Bluetooth Speaker", "USB-C Cable", "Smart Plug", "Power Bank"}, 900, 25000, []string{"electronics"}},
	{"home", []string{"Throw Blanket", "Scented Candle", "Table Lamp", "Storage Basket", "Picture Frame", "Cushion"}, 900, 12000, []string{"home", "kitchen"}},
	{"beauty", []string{"Face Cream", "Lip Balm", "Shampoo", "Hand Soap", "Sunscreen", "Body Lotion"}, 400, 5000, []string{"beauty"}},
	{"toys", []string{"Puzzle", "Building Blocks", "Plush Bear", "Board Game", "Kite", "Art Set"}, 900, 9000, []string{"toys"}},
}

var productAdjectives = []string{"Classic", "Pro", "Everyday", "Lite", "Deluxe", "Eco", "Compact", "Heritage", "Sport", "Essential"}
var productColours = []string{"Black", "Navy", "Olive", "Sand", "Red", "Grey", "White", "Teal", "Rust", "Plum"}

var wishNotes = []string{"", "", "", "size 9", "for Mum's birthday", "gift idea", "wait for a sale", "in blue if they get it", "for the camping trip"}

var returnReasons = []string{"wrong size", "changed mind", "damaged", "not as described", "gift duplicate", "defective", "arrived late"}

var contactReasons = []string{"where is my order", "damaged item", "refund status", "product question", "loyalty points", "store complaint", "change delivery address", "coupon did not work"}

var contactNotes = []string{"", "", "called back", "sent replacement", "escalated to store manager", "explained policy", "issued store credit", "tracking number sent"}

var exceptionResolutions = map[string]string{
	"stock_discrepancy":     "Recounted the shelf and corrected the stock.",
	"duplicate_redemption":  "Confirmed with the other store; absorbed the discount.",
	"expired_coupon":        "Accepted as goodwill; reminded the till team.",
	"unknown_coupon":        "Paper coupon from a partner mailing; accepted.",
	"over_refund":           "Reviewed the receipt; refund stands.",
	"over_return_units":     "Customer returned a gift from another order; accepted.",
	"tender_mismatch":       "Original card expired; cash refund approved after the fact.",
	"past_return_window":    "Approved after the fact: item was faulty.",
	"receiptless_cap":       "Spoke to the customer; flagged the account for review.",
	"coupon_other_customer": "Shared family coupon; accepted.",
	"unauthorised_approval": "Manager reviewed the approval and confirmed it.",
}
