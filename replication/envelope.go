package replication

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/endcap/endcap/retail"
)

// ProtocolVersion is the envelope version this code speaks. A message
// with another version is dropped (and counted): a node never guesses at
// a format it does not know.
const ProtocolVersion = 1

// MaxPayload bounds every message. Bigger ones are dropped unread; the
// senders here split their batches to stay under it.
const MaxPayload = 1 << 20

// Kind says what a message carries.
type Kind string

const (
	KindUpload    Kind = "upload"    // edge → hub (up): outbox mutations
	KindCatchup   Kind = "catchup"   // edge → hub (up): send me the feed from From
	KindAck       Kind = "ack"       // hub → edge (down): results of uploaded mutations
	KindChanges   Kind = "changes"   // hub → feed, or down as a catch-up answer: committed changes
	KindHead      Kind = "head"      // hub → feed: the latest hub sequence, every second
	KindCompacted Kind = "compacted" // hub → edge (down): the range asked for is gone; bootstrap
	KindPresence  Kind = "presence"  // edge → presence (retained): how the edge is doing
)

// Message is the one envelope of every topic. Which fields are set
// depends on Kind; Decode checks them.
type Message struct {
	V      int    `json:"v"`
	Kind   Kind   `json:"kind"`
	Region string `json:"region"`

	// upload: encoded retail mutations (retail.Encode), in outbox order.
	Mutations []json.RawMessage `json:"mutations,omitempty"`
	// catchup: the first hub sequence wanted.
	From uint64 `json:"from,omitempty"`
	// ack: one result per mutation of an upload that the hub applied
	// (or had applied before).
	Results []AckResult `json:"results,omitempty"`
	// ack: the next outbox sequence the hub expects from this edge, when
	// the upload started past it (an earlier upload was lost): resend
	// from there. 0 when there was no gap.
	Expect uint64 `json:"expect,omitempty"`
	// changes: consecutive change-log entries, in hub-sequence order.
	Entries []Change `json:"entries,omitempty"`
	// changes, head, compacted: the hub's latest sequence when sent.
	Head uint64 `json:"head,omitempty"`
	// head: who publishes the feed ("node/term"); a new epoch means a new
	// leader, and edges resend what is still unacknowledged.
	Epoch string `json:"epoch,omitempty"`
	// changes sent as a catch-up answer: the answer's last message.
	Last bool `json:"last,omitempty"`
	// compacted: the oldest sequence the hub still holds.
	Oldest uint64 `json:"oldest,omitempty"`
	// presence
	Presence *Presence `json:"presence,omitempty"`
}

// AckResult is the hub's answer for one uploaded mutation.
type AckResult struct {
	ID         string             `json:"id"`
	Status     retail.Status      `json:"status,omitempty"`
	Code       string             `json:"code,omitempty"`
	Reason     string             `json:"reason,omitempty"`
	Exceptions []retail.Exception `json:"exceptions,omitempty"`
	Seq        uint64             `json:"seq,omitempty"` // hub sequence of its changes; 0 for a duplicate
	Duplicate  bool               `json:"duplicate,omitempty"`
	// Err: the hub could not read the mutation at all (a newer format
	// than the hub knows). Nothing was applied; it stays pending.
	Err string `json:"error,omitempty"`
}

// Change is one change-log entry: a mutation's row changes under its hub
// sequence number. The hub's change log and the feed carry the same thing.
type Change struct {
	Seq        uint64             `json:"seq"`
	MutationID string             `json:"mutation_id"`
	Status     retail.Status      `json:"status"`
	Changes    []retail.RowChange `json:"changes"`
	// raw is Changes as the hub stored it: published as is, without
	// decoding and encoding every row again (see RawChange).
	raw json.RawMessage
}

// RawChange is a change-log entry whose row changes are already JSON (the
// hub's change log): it marshals with them verbatim.
func RawChange(seq uint64, mutationID string, status retail.Status, changes json.RawMessage) Change {
	return Change{Seq: seq, MutationID: mutationID, Status: status, raw: changes}
}

// MarshalJSON writes the raw row changes when there are any.
func (c Change) MarshalJSON() ([]byte, error) {
	type plain Change
	if c.raw == nil {
		return json.Marshal(plain(c))
	}
	head, err := json.Marshal(struct {
		Seq        uint64        `json:"seq"`
		MutationID string        `json:"mutation_id"`
		Status     retail.Status `json:"status"`
	}{c.Seq, c.MutationID, c.Status})
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(head)+len(c.raw)+16)
	out = append(out, head[:len(head)-1]...)
	out = append(out, `,"changes":`...)
	out = append(out, c.raw...)
	return append(out, '}'), nil
}

// Presence is an edge's retained status. The broker publishes the edge's
// last will (Online false) when it vanishes.
type Presence struct {
	Edge       string `json:"edge"`
	Online     bool   `json:"online"`
	Pending    int    `json:"pending"`
	AppliedSeq uint64 `json:"applied_seq"`
	Attention  int    `json:"attention"`
	At         int64  `json:"at"` // unix milliseconds
}

// Errors Decode returns; every one means "drop and count".
var (
	ErrTooLarge       = errors.New("message too large")
	ErrMalformed      = errors.New("malformed message")
	ErrUnknownVersion = errors.New("unknown protocol version")
	ErrWrongTopic     = errors.New("message kind not allowed on this topic")
)

// TopicClass is what a topic is for, which decides the kinds allowed on it.
type TopicClass int

const (
	ClassFeed TopicClass = iota + 1
	ClassUp
	ClassDown
	ClassPresence
)

var kindsOn = map[TopicClass][]Kind{
	ClassFeed:     {KindChanges, KindHead},
	ClassUp:       {KindUpload, KindCatchup},
	ClassDown:     {KindAck, KindChanges, KindCompacted, KindHead},
	ClassPresence: {KindPresence},
}

// Encode marshals m with the current version and region set, and checks
// the size bound.
func Encode(m Message) ([]byte, error) {
	m.V = ProtocolVersion
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxPayload {
		return nil, fmt.Errorf("%w: %d bytes (max %d)", ErrTooLarge, len(b), MaxPayload)
	}
	return b, nil
}

// Decode parses and checks a message received on a topic of class c for
// region. It never panics; any error wraps one of the Err values above.
func Decode(region string, c TopicClass, payload []byte) (Message, error) {
	if len(payload) > MaxPayload {
		return Message{}, fmt.Errorf("%w: %d bytes (max %d)", ErrTooLarge, len(payload), MaxPayload)
	}
	m, fast := Message{}, false
	if c == ClassFeed || c == ClassDown {
		m, fast = parseChanges(payload)
	}
	if !fast {
		var err error
		if m, err = decodeJSON(payload); err != nil {
			return Message{}, err
		}
	}
	if m.Region != region {
		return Message{}, fmt.Errorf("%w: region %q, want %q", ErrMalformed, m.Region, region)
	}
	allowed := false
	for _, k := range kindsOn[c] {
		allowed = allowed || k == m.Kind
	}
	if !allowed {
		return Message{}, fmt.Errorf("%w: %q", ErrWrongTopic, m.Kind)
	}
	if err := m.check(); err != nil {
		return Message{}, fmt.Errorf("%w: %s: %v", ErrMalformed, m.Kind, err)
	}
	return m, nil
}

// decodeJSON is Decode's general path: any message encoding/json reads
// as a Message, with no unknown fields and nothing after it.
func decodeJSON(payload []byte) (Message, error) {
	// One pass over the message: the version is checked on the decoded
	// value; only a message that does not decode is looked at again, to
	// tell an unknown version from a malformed message.
	var m Message
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	err := dec.Decode(&m)
	if err == nil && dec.More() {
		err = errors.New("data after the message")
	}
	if err != nil || m.V != ProtocolVersion {
		var head struct {
			V json.RawMessage `json:"v"`
		}
		if herr := json.Unmarshal(payload, &head); herr != nil {
			return Message{}, fmt.Errorf("%w: %v", ErrMalformed, herr)
		}
		if string(head.V) != "1" {
			return Message{}, fmt.Errorf("%w: v=%s", ErrUnknownVersion, orNone(head.V))
		}
		return Message{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return m, nil
}

func orNone(b []byte) string {
	if len(b) == 0 {
		return "(none)"
	}
	return string(b)
}

func (m Message) check() error {
	switch m.Kind {
	case KindUpload:
		if len(m.Mutations) == 0 {
			return errors.New("no mutations")
		}
		for i, raw := range m.Mutations {
			if len(raw) == 0 || raw[0] != '{' {
				return fmt.Errorf("mutation %d is not an object", i)
			}
		}
	case KindCatchup:
		if m.From == 0 {
			return errors.New("from must be at least 1")
		}
	case KindAck:
		if len(m.Results) == 0 && m.Expect == 0 {
			return errors.New("no results")
		}
		for i, r := range m.Results {
			if _, err := retail.ParseMutationID(r.ID); err != nil {
				return fmt.Errorf("result %d: %v", i, err)
			}
			if r.Err == "" && r.Status != retail.StatusAccepted && r.Status != retail.StatusRejected && r.Status != retail.StatusFlagged {
				return fmt.Errorf("result %d: status %q", i, r.Status)
			}
		}
	case KindChanges:
		if len(m.Entries) == 0 {
			return errors.New("no entries")
		}
		for i, e := range m.Entries {
			if e.Seq == 0 || (i > 0 && e.Seq != m.Entries[i-1].Seq+1) {
				return fmt.Errorf("entry %d: sequence %d out of order", i, e.Seq)
			}
			if _, err := retail.ParseMutationID(e.MutationID); err != nil {
				return fmt.Errorf("entry %d: %v", i, err)
			}
		}
		if m.Head < m.Entries[len(m.Entries)-1].Seq {
			return fmt.Errorf("head %d before the last entry", m.Head)
		}
	case KindHead:
		if m.Epoch == "" {
			return errors.New("no epoch")
		}
	case KindCompacted:
		if m.Oldest == 0 {
			return errors.New("no oldest sequence")
		}
	case KindPresence:
		if m.Presence == nil || ValidID(m.Presence.Edge) != nil {
			return errors.New("no presence or a bad edge id")
		}
	default:
		return fmt.Errorf("unknown kind %q", m.Kind)
	}
	return nil
}

// encodeChanges encodes the longest prefix of entries (at least one)
// that fits MaxPayload as a KindChanges message, with the head and last
// flag tail gives for a prefix of n entries, and returns it and n. The
// bytes are Encode's for the same Message. It writes each entry once:
// the hub's stored row changes (RawChange) are copied as they are, where
// json.Marshal would check and compact every byte of them again, and a
// message is never encoded whole only to be found too large.
func encodeChanges(region string, entries []Change, tail func(n int) (head uint64, last bool)) ([]byte, int, error) {
	const tailRoom = len(`],"head":18446744073709551615,"last":true}`)
	b := make([]byte, 0, 64*1024)
	b = append(b, `{"v":1,"kind":"changes","region":`...)
	b = appendJSONString(b, region)
	b = append(b, `,"entries":[`...)
	n := 0
	for _, e := range entries {
		mark := len(b)
		if n > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendChange(b, e); err != nil {
			return nil, 0, err
		}
		if len(b)+tailRoom > MaxPayload {
			if n == 0 {
				return nil, 0, fmt.Errorf("%w: one entry of %d bytes", ErrTooLarge, len(b)-mark)
			}
			b = b[:mark]
			break
		}
		n++
	}
	head, last := tail(n)
	b = append(b, ']')
	if head != 0 {
		b = append(b, `,"head":`...)
		b = strconv.AppendUint(b, head, 10)
	}
	if last {
		b = append(b, `,"last":true`...)
	}
	return append(b, '}'), n, nil
}

// appendChange appends e as json.Marshal writes it.
func appendChange(b []byte, e Change) ([]byte, error) {
	if e.raw == nil {
		j, err := json.Marshal(e)
		return append(b, j...), err
	}
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	b = append(b, `,"mutation_id":`...)
	b = appendJSONString(b, e.MutationID)
	b = append(b, `,"status":`...)
	b = appendJSONString(b, string(e.Status))
	b = append(b, `,"changes":`...)
	b = append(b, e.raw...)
	return append(b, '}'), nil
}

// appendJSONString appends s quoted as json.Marshal quotes it: directly
// when it is printable ASCII that needs no escape, else through
// json.Marshal.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			j, _ := json.Marshal(s)
			return append(b, j...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
