package replication

import (
	"fmt"
	"slices"
	"strings"
)

// DefaultHubUser is the broker user name of the hub when none is set.
const DefaultHubUser = "hub"

// Role is what a broker user may do, decided by its name alone.
type Role int

const (
	// RoleNone may do nothing: a name that is not a valid id.
	RoleNone Role = iota
	// RoleHub reads and writes every topic of the region.
	RoleHub
	// RoleEdge is a store edge whose id is its user name.
	RoleEdge
	// RoleWallet is a phone's wallet page: it reads wallet topics only.
	RoleWallet
)

func (r Role) String() string {
	switch r {
	case RoleHub:
		return "hub"
	case RoleEdge:
		return "edge"
	case RoleWallet:
		return "wallet"
	}
	return "none"
}

// ACL holds the region's topic access rules, the single source of them:
// the embedded broker asks Allowed, and MosquittoACL renders the same
// rules for mosquitto. The zero HubUser means DefaultHubUser.
//
//	user                 write (publish)                     read (subscribe, receive)
//	hub (HubUser)        endcap/R/#                          endcap/R/#
//	wallet, wallet-*     nothing                             endcap/R/wallet/+
//	any other id E       endcap/R/edge/E/up                  endcap/R/feed
//	(an edge)            endcap/R/edge/E/presence            endcap/R/edge/E/down
//	                     endcap/R/wallet/+
//
// Nothing else: no other region, no "$SYS" or "$share", and a user name
// that is not a valid id (ValidID) may do nothing.
type ACL struct {
	Region  string
	HubUser string
}

func (a ACL) hubUser() string {
	if a.HubUser == "" {
		return DefaultHubUser
	}
	return a.HubUser
}

// IsWalletUser reports whether user names a wallet reader: "wallet" or
// "wallet-" followed by anything.
func IsWalletUser(user string) bool {
	return user == "wallet" || strings.HasPrefix(user, "wallet-")
}

// RoleOf returns user's role.
func (a ACL) RoleOf(user string) Role {
	switch {
	case ValidID(user) != nil || ValidID(a.Region) != nil:
		return RoleNone
	case user == a.hubUser():
		return RoleHub
	case IsWalletUser(user):
		return RoleWallet
	}
	return RoleEdge
}

// grants returns the topic filters user may read and write.
func (a ACL) grants(user string) (read, write []string) {
	t := Topics{Region: a.Region}
	switch a.RoleOf(user) {
	case RoleHub:
		all := t.Root() + "/#"
		return []string{all}, []string{all}
	case RoleWallet:
		return []string{t.Wallet("+")}, nil
	case RoleEdge:
		return []string{t.Feed(), t.Down(user)},
			[]string{t.Up(user), t.Presence(user), t.Wallet("+")}
	}
	return nil, nil
}

// Allowed reports whether user may publish to topic (write) or subscribe
// to the filter topic and receive what it matches (!write). A filter with
// wildcards is allowed only if every topic it can match is allowed: an
// edge may not subscribe to endcap/R/# nor to endcap/R/edge/+/down. A
// publish to a topic with wildcards, or an invalid filter, is refused.
func (a ACL) Allowed(user, topic string, write bool) bool {
	if !validFilter(topic) || (write && strings.ContainsAny(topic, "+#")) {
		return false
	}
	read, wr := a.grants(user)
	grants := read
	if write {
		grants = wr
	}
	for _, g := range grants {
		if filterCovers(g, topic) {
			return true
		}
	}
	return false
}

// validFilter reports whether f is a valid MQTT topic filter: not empty,
// '+' and '#' only as whole levels, '#' last, no NUL.
func validFilter(f string) bool {
	if f == "" || strings.ContainsRune(f, 0) {
		return false
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		switch {
		case l == "#" && i != len(levels)-1:
			return false
		case l != "+" && l != "#" && strings.ContainsAny(l, "+#"):
			return false
		}
	}
	return true
}

// filterCovers reports whether every topic that filter f matches is also
// matched by grant g (both valid filters). Topics starting with '$' are
// matched by no wildcard in the first level, as in MQTT; our grants all
// start with "endcap/", so no '$' topic is ever covered.
func filterCovers(g, f string) bool {
	gl, fl := strings.Split(g, "/"), strings.Split(f, "/")
	for i, p := range gl {
		if p == "#" {
			// g matches its parent level and everything below: every
			// topic f matches from here on.
			return true
		}
		if i >= len(fl) {
			return false // f's topics end where g wants more levels
		}
		switch q := fl[i]; {
		case q == "#":
			return false // f reaches levels g does not (g has no '#' here)
		case p == "+":
			// g takes any one level; f's '+' or literal is one level.
		case q == "+":
			return false // f takes any level, g only the literal p
		case p != q:
			return false
		}
	}
	return len(fl) == len(gl)
}

// MosquittoACL renders ACL{region, hubUser} for mosquitto's acl_file, one
// "user" block for each of users (sorted; names that are not valid ids
// are left out). It grants exactly what ACL.Allowed grants those users on
// publish and on delivery, and nothing to anyone else: no anonymous topics
// and no "pattern" lines, because a pattern applies to every user and
// mosquitto cannot single out wallet-* users by prefix.
//
// Regenerate the file whenever users are added or removed, and make
// mosquitto reload it (SIGHUP): a user missing from it may connect but
// publish and receive nothing. Mosquitto's acl_file cannot refuse a
// SUBSCRIBE: it grants it and then delivers only what the user may read.
func MosquittoACL(region, hubUser string, users []string) string {
	a := ACL{Region: region, HubUser: hubUser}
	var b strings.Builder
	fmt.Fprintf(&b, `# Mosquitto acl_file for Endcap region %q, generated by hubctl
# (replication.MosquittoACL). Do not edit: regenerate it after adding or
# removing users (hubctl credentials add/remove --acl FILE, or hubctl
# mosquitto-config) and send mosquitto SIGHUP to reload it.
#
# hub %q: read/write the whole region; wallet, wallet-*: read wallets;
# every other user is an edge of that id: publish its upload and presence
# topics and wallets, receive the feed and its own down topic.
# No topic lines before the first user line: anonymous clients get nothing.
`, region, a.hubUser())
	users = slices.Clone(users)
	slices.Sort(users)
	users = slices.Compact(users)
	for _, u := range users {
		read, write := a.grants(u)
		if len(read)+len(write) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n# role: %s\nuser %s\n", a.RoleOf(u), u)
		for _, w := range write {
			access := "write"
			if slices.Contains(read, w) {
				access = "readwrite"
			}
			fmt.Fprintf(&b, "topic %s %s\n", access, w)
		}
		for _, r := range read {
			if !slices.Contains(write, r) {
				fmt.Fprintf(&b, "topic read %s\n", r)
			}
		}
	}
	return b.String()
}
