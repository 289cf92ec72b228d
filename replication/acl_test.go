package replication

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestACLAllowed(t *testing.T) {
	t.Parallel()
	a := ACL{Region: "R"}
	const r, w = false, true
	for _, tc := range []struct {
		name  string
		user  string
		topic string
		write bool
		want  bool
	}{
		// The hub: the whole region, nothing else.
		{"hub reads all uploads", "hub", "endcap/R/edge/+/up", r, true},
		{"hub reads the region", "hub", "endcap/R/#", r, true},
		{"hub writes feed", "hub", "endcap/R/feed", w, true},
		{"hub writes an edge's down", "hub", "endcap/R/edge/s1/down", w, true},
		{"hub writes a wallet", "hub", "endcap/R/wallet/c1", w, true},
		{"hub reads the root level", "hub", "endcap/R", r, true},
		{"hub: other region", "hub", "endcap/S/feed", r, false},
		{"hub: all regions", "hub", "endcap/+/feed", r, false},
		{"hub: everything", "hub", "#", r, false},
		{"hub: $SYS", "hub", "$SYS/#", r, false},
		{"hub: shared subscription", "hub", "$share/hubs/endcap/R/edge/+/up", r, false},
		{"hub: publish with wildcard", "hub", "endcap/R/+", w, false},
		{"custom hub user", "hq", "endcap/R/feed", w, false}, // hq is an edge here, see below

		// An edge: its own topics.
		{"edge writes own up", "s1", "endcap/R/edge/s1/up", w, true},
		{"edge writes own presence", "s1", "endcap/R/edge/s1/presence", w, true},
		{"edge writes a wallet", "s1", "endcap/R/wallet/c1", w, true},
		{"edge reads feed", "s1", "endcap/R/feed", r, true},
		{"edge reads own down", "s1", "endcap/R/edge/s1/down", r, true},
		{"edge writes other's up", "s1", "endcap/R/edge/s2/up", w, false},
		{"edge writes other's presence", "s1", "endcap/R/edge/s2/presence", w, false},
		{"edge writes own down", "s1", "endcap/R/edge/s1/down", w, false},
		{"edge writes feed", "s1", "endcap/R/feed", w, false},
		{"edge reads other's down", "s1", "endcap/R/edge/s2/down", r, false},
		{"edge reads all downs", "s1", "endcap/R/edge/+/down", r, false},
		{"edge reads own edge tree", "s1", "endcap/R/edge/s1/#", r, false},
		{"edge reads own edge levels", "s1", "endcap/R/edge/s1/+", r, false},
		{"edge reads the region", "s1", "endcap/R/#", r, false},
		{"edge reads presence", "s1", "endcap/R/edge/+/presence", r, false},
		{"edge reads own up", "s1", "endcap/R/edge/s1/up", r, false},
		{"edge reads wallets", "s1", "endcap/R/wallet/+", r, false},
		{"edge reads everything", "s1", "#", r, false},
		{"edge reads $SYS", "s1", "$SYS/broker/clients/connected", r, false},
		{"edge writes other region", "s1", "endcap/S/edge/s1/up", w, false},
		{"edge writes below own up", "s1", "endcap/R/edge/s1/up/x", w, false},
		{"edge writes wallet tree", "s1", "endcap/R/wallet/c1/x", w, false},
		{"edge reads feed by +", "s1", "endcap/+/feed", r, false},
		{"edge named like a level", "feed", "endcap/R/edge/feed/up", w, true},

		// Wallet readers.
		{"wallet reads all wallets", "wallet", "endcap/R/wallet/+", r, true},
		{"wallet reads one", "wallet-7", "endcap/R/wallet/c1", r, true},
		{"wallet writes a wallet", "wallet", "endcap/R/wallet/c1", w, false},
		{"wallet reads feed", "wallet", "endcap/R/feed", r, false},
		{"wallet reads wallet tree", "wallet", "endcap/R/wallet/#", r, false},
		{"wallet writes an up", "wallet-7", "endcap/R/edge/wallet-7/up", w, false},
		{"wallets- is an edge", "wallets", "endcap/R/edge/wallets/up", w, true},

		// Users that are no id, and bad filters.
		{"anonymous", "", "endcap/R/feed", r, false},
		{"user with +", "s+", "endcap/R/edge/s+/up", w, false},
		{"user with /", "s/1", "endcap/R/edge/s/1/up", w, false},
		{"empty topic", "hub", "", r, false},
		{"# not last", "hub", "endcap/R/#/x", r, false},
		{"+ inside a level", "hub", "endcap/R/edge+/up", r, false},
	} {
		if got := a.Allowed(tc.user, tc.topic, tc.write); got != tc.want {
			t.Errorf("%s: Allowed(%q, %q, write=%v) = %v, want %v", tc.name, tc.user, tc.topic, tc.write, got, tc.want)
		}
	}
	hq := ACL{Region: "R", HubUser: "hq"}
	if !hq.Allowed("hq", "endcap/R/feed", true) || hq.Allowed("hub", "endcap/R/feed", true) {
		t.Error("HubUser hq: want hq to be the hub and hub an ordinary edge")
	}
	if (ACL{Region: "bad/region"}).Allowed("hub", "endcap/bad/region/feed", true) {
		t.Error("an invalid region allows something")
	}
}

func TestFilterCovers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		grant, filter string
		want          bool
	}{
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		{"a/b", "a/b/c", false},
		{"a/b", "a", false},
		{"a/+", "a/b", true},
		{"a/+", "a/+", true},
		{"a/+", "a/#", false},
		{"a/+", "a/b/c", false},
		{"a/+/c", "a/+/c", true},
		{"a/b/c", "a/+/c", false},
		{"a/#", "a", true},
		{"a/#", "a/#", true},
		{"a/#", "a/+/c/#", true},
		{"a/#", "#", false},
		{"a/#", "+/b", false},
		{"#", "a/#", true},
		{"a/+/#", "a/b/c", true},
		{"a/+/#", "a", false},
		{"a/+/#", "a/b", true},
	} {
		if got := filterCovers(tc.grant, tc.filter); got != tc.want {
			t.Errorf("filterCovers(%q, %q) = %v, want %v", tc.grant, tc.filter, got, tc.want)
		}
	}
}

// mosquittoACL evaluates an acl_file as mosquitto 2.0 does for a PUBLISH
// (write) or a delivery (read) to a topic without wildcards: the user's
// own lines, deny first, then the patterns; default deny.
type mosquittoACL struct {
	users    map[string][]aclEntry
	patterns []aclEntry
}

type aclEntry struct{ access, topic string }

func parseMosquittoACL(t *testing.T, text string) mosquittoACL {
	t.Helper()
	m := mosquittoACL{users: map[string][]aclEntry{}}
	user, inUser := "", false
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		switch {
		case f[0] == "user" && len(f) == 2:
			user, inUser = f[1], true
		case (f[0] == "topic" || f[0] == "pattern") && len(f) == 3:
			e := aclEntry{f[1], f[2]}
			switch {
			case f[0] == "pattern":
				m.patterns = append(m.patterns, e)
			case inUser:
				m.users[user] = append(m.users[user], e)
			default:
				t.Errorf("anonymous ACL line %q", line)
			}
		default:
			t.Fatalf("acl line %q: not what MosquittoACL writes", line)
		}
	}
	return m
}

func (m mosquittoACL) allowed(user, topic string, write bool) bool {
	want := "read"
	if write {
		want = "write"
	}
	check := func(es []aclEntry, subst bool) (decided, ok bool) {
		for _, deny := range []bool{true, false} {
			for _, e := range es {
				pat := e.topic
				if subst {
					pat = strings.ReplaceAll(pat, "%u", user)
				}
				if (e.access == "deny") != deny || strings.HasPrefix(topic, "$") != strings.HasPrefix(pat, "$") || !filterCovers(pat, topic) {
					continue
				}
				if deny {
					return true, false
				}
				if e.access == want || e.access == "readwrite" {
					return true, true
				}
			}
		}
		return false, false
	}
	if d, ok := check(m.users[user], false); d {
		return ok
	}
	if strings.ContainsAny(user, "+#") {
		return false
	}
	d, ok := check(m.patterns, true)
	return d && ok
}

// TestMosquittoACLMatchesACL: for the users it lists, the rendered
// acl_file allows exactly what ACL.Allowed allows, on every publish and
// delivery; a user it does not list gets nothing.
func TestMosquittoACLMatchesACL(t *testing.T) {
	t.Parallel()
	users := []string{"store-2", "hq", "wallet", "store-1", "wallet-9", "wallets", "bad/user", "store-1"}
	a := ACL{Region: "demo", HubUser: "hq"}
	m := parseMosquittoACL(t, MosquittoACL("demo", "hq", users))
	tp := Topics{Region: "demo"}
	topics := []string{tp.Feed(), tp.Root(), tp.Root() + "/edge", tp.Wallet("c1"), tp.Wallet("c1") + "/x",
		"endcap/other/feed", "endcap/other/edge/store-1/up", "$SYS/broker/uptime", "elsewhere", "endcap/demo/edge/store-1/up/x"}
	for _, u := range append(users, "store-3", "hub") {
		topics = append(topics, tp.Up(u), tp.Down(u), tp.Presence(u))
	}
	for _, u := range append(users, "store-3", "hub") {
		listed := strings.Contains(strings.Join(users, " "), u) && ValidID(u) == nil
		for _, topic := range topics {
			for _, write := range []bool{false, true} {
				want := listed && a.Allowed(u, topic, write)
				if got := m.allowed(u, topic, write); got != want {
					t.Errorf("user %s, topic %s, write %v: mosquitto acl allows %v, want %v", u, topic, write, got, want)
				}
			}
		}
	}
}

// TestDeployACL: deploy/mosquitto.acl is MosquittoACL for the sample
// users of deploy/README.md. ENDCAP_UPDATE_GOLDEN=1 rewrites it.
func TestDeployACL(t *testing.T) {
	t.Parallel()
	path := filepath.Join("..", "deploy", "mosquitto.acl")
	want := MosquittoACL("demo", "hub", []string{"hub", "store-1", "store-2", "wallet"})
	if os.Getenv("ENDCAP_UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s is not MosquittoACL(demo, hub, [hub store-1 store-2 wallet]); run with ENDCAP_UPDATE_GOLDEN=1 to rewrite it.\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}
