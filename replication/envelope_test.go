package replication

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestDecodeChecksEveryKind(t *testing.T) {
	entry := `{"seq":5,"mutation_id":"A/1","status":"accepted","changes":[{"t":"settings","op":"put","c":["key","value"],"v":["k","v"]}]}`
	for _, tc := range []struct {
		name    string
		class   TopicClass
		payload string
		want    error // nil: decodes
	}{
		{"upload", ClassUp, `{"v":1,"kind":"upload","region":"r","mutations":[{"id":"A/1"}]}`, nil},
		{"catch-up", ClassUp, `{"v":1,"kind":"catchup","region":"r","from":7}`, nil},
		{"ack", ClassDown, `{"v":1,"kind":"ack","region":"r","results":[{"id":"A/1","status":"flagged","seq":9}]}`, nil},
		{"ack with only expect", ClassDown, `{"v":1,"kind":"ack","region":"r","expect":4}`, nil},
		{"changes", ClassFeed, `{"v":1,"kind":"changes","region":"r","head":5,"entries":[` + entry + `]}`, nil},
		{"catch-up answer", ClassDown, `{"v":1,"kind":"changes","region":"r","head":9,"last":true,"entries":[` + entry + `]}`, nil},
		{"head", ClassFeed, `{"v":1,"kind":"head","region":"r","head":3,"epoch":"h1/2"}`, nil},
		{"compacted", ClassDown, `{"v":1,"kind":"compacted","region":"r","oldest":100,"head":200}`, nil},
		{"presence", ClassPresence, `{"v":1,"kind":"presence","region":"r","presence":{"edge":"A","online":true,"pending":2,"applied_seq":5,"attention":0,"at":1}}`, nil},

		{"not JSON", ClassFeed, "\x00\xff garbage", ErrMalformed},
		{"truncated", ClassFeed, `{"v":1,"kind":"head","reg`, ErrMalformed},
		{"no version", ClassFeed, `{"kind":"head","region":"r","epoch":"x"}`, ErrUnknownVersion},
		{"version 2", ClassFeed, `{"v":2,"kind":"head","region":"r","epoch":"x"}`, ErrUnknownVersion},
		{"version as text", ClassFeed, `{"v":"1","kind":"head","region":"r","epoch":"x"}`, ErrUnknownVersion},
		{"other region", ClassFeed, `{"v":1,"kind":"head","region":"q","epoch":"x"}`, ErrMalformed},
		{"unknown field", ClassUp, `{"v":1,"kind":"catchup","region":"r","from":1,"x":1}`, ErrMalformed},
		{"two values", ClassUp, `{"v":1,"kind":"catchup","region":"r","from":1} {}`, ErrMalformed},
		{"upload on the feed", ClassFeed, `{"v":1,"kind":"upload","region":"r","mutations":[{}]}`, ErrWrongTopic},
		{"ack on up", ClassUp, `{"v":1,"kind":"ack","region":"r","expect":1}`, ErrWrongTopic},
		{"unknown kind", ClassFeed, `{"v":1,"kind":"boom","region":"r"}`, ErrWrongTopic},
		{"empty upload", ClassUp, `{"v":1,"kind":"upload","region":"r","mutations":[]}`, ErrMalformed},
		{"upload of a number", ClassUp, `{"v":1,"kind":"upload","region":"r","mutations":[42]}`, ErrMalformed},
		{"catch-up from 0", ClassUp, `{"v":1,"kind":"catchup","region":"r","from":0}`, ErrMalformed},
		{"ack of a bad id", ClassDown, `{"v":1,"kind":"ack","region":"r","results":[{"id":"nope","status":"accepted"}]}`, ErrMalformed},
		{"ack of a bad status", ClassDown, `{"v":1,"kind":"ack","region":"r","results":[{"id":"A/1","status":"maybe"}]}`, ErrMalformed},
		{"changes out of order", ClassFeed, `{"v":1,"kind":"changes","region":"r","head":9,"entries":[` + entry + `,` + entry + `]}`, ErrMalformed},
		{"changes past head", ClassFeed, `{"v":1,"kind":"changes","region":"r","head":1,"entries":[` + entry + `]}`, ErrMalformed},
		{"changes with a float", ClassFeed, `{"v":1,"kind":"changes","region":"r","head":5,"entries":[{"seq":5,"mutation_id":"A/1","status":"accepted","changes":[{"t":"x","op":"put","c":["a"],"v":[1.5]}]}]}`, ErrMalformed},
		{"head without epoch", ClassFeed, `{"v":1,"kind":"head","region":"r","head":3}`, ErrMalformed},
		{"presence of a bad edge", ClassPresence, `{"v":1,"kind":"presence","region":"r","presence":{"edge":"a/b","online":true,"pending":0,"applied_seq":0,"attention":0,"at":1}}`, ErrMalformed},
		{"oversized", ClassUp, `{"v":1,"kind":"catchup","region":"r","from":1,"pad":"` + strings.Repeat("x", MaxPayload) + `"}`, ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Decode("r", tc.class, []byte(tc.payload))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				b, err := Encode(m)
				if err != nil {
					t.Fatalf("Encode again: %v", err)
				}
				if _, err := Decode("r", tc.class, b); err != nil {
					t.Fatalf("round trip: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestEncodeRefusesOversized(t *testing.T) {
	big := json.RawMessage(`{"pad":"` + strings.Repeat("x", MaxPayload) + `"}`)
	if _, err := Encode(Message{Kind: KindUpload, Region: "r", Mutations: []json.RawMessage{big}}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Encode: %v, want ErrTooLarge", err)
	}
}

func TestTopicMatches(t *testing.T) {
	for _, tc := range []struct {
		filter, topic string
		want          bool
	}{
		{"endcap/r/feed", "endcap/r/feed", true},
		{"endcap/r/edge/+/up", "endcap/r/edge/A/up", true},
		{"endcap/r/edge/+/up", "endcap/r/edge/A/down", false},
		{"endcap/r/#", "endcap/r/edge/A/up", true},
		{"endcap/r/edge/+/up", "endcap/r/edge/A/up/x", false},
		{"endcap/r/feed", "endcap/r/feed/x", false},
	} {
		if got := topicMatches(tc.filter, tc.topic); got != tc.want {
			t.Errorf("topicMatches(%q, %q) = %v", tc.filter, tc.topic, got)
		}
	}
	tp := Topics{Region: "r"}
	if e, ok := tp.EdgeOf(tp.Up("S001")); !ok || e != "S001" {
		t.Errorf("EdgeOf(up) = %q %v", e, ok)
	}
	if _, ok := tp.EdgeOf("endcap/r/edge/a+b/up"); ok {
		t.Errorf("EdgeOf accepted a wildcard id")
	}
}

// FuzzDecodeMessage: Decode never panics, and what it accepts encodes
// and decodes again to the same message.
func FuzzDecodeMessage(f *testing.F) {
	f.Add(`{"v":1,"kind":"catchup","region":"r","from":7}`, 2)
	f.Add(`{"v":1,"kind":"changes","region":"r","head":5,"entries":[{"seq":5,"mutation_id":"A/1","status":"accepted","changes":[]}]}`, 1)
	f.Add(`{"v":1,"kind":"ack","region":"r","results":[{"id":"A/1","status":"flagged","seq":9}]}`, 3)
	f.Add(`{"v":1,"kind":"presence","region":"r","presence":{"edge":"A","online":true,"pending":2,"applied_seq":5,"attention":0,"at":1}}`, 4)
	f.Fuzz(func(t *testing.T, payload string, class int) {
		c := TopicClass(class%4 + 1)
		m, err := Decode("r", c, []byte(payload))
		if err != nil {
			return
		}
		b, err := Encode(m)
		if err != nil {
			t.Fatalf("accepted but cannot encode: %v", err)
		}
		m2, err := Decode("r", c, b)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		b2, _ := Encode(m2)
		if !bytes.Equal(b, b2) {
			t.Fatalf("not stable:\n%s\n%s", b, b2)
		}
	})
}
