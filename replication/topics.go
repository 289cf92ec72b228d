package replication

import (
	"fmt"
	"regexp"
	"strings"
)

// Topics names a region's MQTT topics. Every topic starts with
// "endcap/{region}/", so regions share nothing on one broker.
//
//	endcap/{region}/feed                   hub → all edges: committed row changes, head
//	endcap/{region}/edge/{edge}/up         edge → hub: outbox uploads, catch-up requests
//	endcap/{region}/edge/{edge}/down       hub → one edge: acks, catch-up responses
//	endcap/{region}/edge/{edge}/presence   edge, retained, with a last will
//	endcap/{region}/wallet/{customer}      edge → a shopper's phone: coupons
type Topics struct{ Region string }

// Root is the prefix of every topic of the region, without a trailing slash.
func (t Topics) Root() string { return "endcap/" + t.Region }

// Feed is the region's change feed.
func (t Topics) Feed() string { return t.Root() + "/feed" }

// Up is where an edge publishes uploads and catch-up requests.
func (t Topics) Up(edge string) string { return t.Root() + "/edge/" + edge + "/up" }

// Down is where the hub answers one edge.
func (t Topics) Down(edge string) string { return t.Root() + "/edge/" + edge + "/down" }

// Presence is an edge's retained status topic.
func (t Topics) Presence(edge string) string { return t.Root() + "/edge/" + edge + "/presence" }

// Wallet is a shopper's wallet topic.
func (t Topics) Wallet(customer string) string { return t.Root() + "/wallet/" + customer }

// AllUp matches every edge's upload topic (the hub leader subscribes).
func (t Topics) AllUp() string { return t.Root() + "/edge/+/up" }

// AllPresence matches every edge's presence topic.
func (t Topics) AllPresence() string { return t.Root() + "/edge/+/presence" }

// EdgeOf returns the edge id in an edge topic (up, down or presence).
func (t Topics) EdgeOf(topic string) (string, bool) {
	rest, ok := strings.CutPrefix(topic, t.Root()+"/edge/")
	if !ok {
		return "", false
	}
	edge, _, ok := strings.Cut(rest, "/")
	return edge, ok && ValidID(edge) == nil
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// ValidID checks a region, edge or user id: 1 to 64 letters, digits, '_',
// '.' or '-', starting with a letter or digit. Such an id cannot carry MQTT
// wildcards or separators into a topic.
func ValidID(id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("id %q: want 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit", id)
	}
	return nil
}
