package retail

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// EnvelopeVersion is the envelope version this program writes and reads.
const EnvelopeVersion = 1

// MaxMutationSize bounds an encoded mutation. A larger one is refused with
// ErrTooLarge before it is parsed.
const MaxMutationSize = 256 << 10

// Class says how Apply treats a mutation that breaks a rule.
type Class int

const (
	// Request: can still be refused; a rule broken means rejected.
	Request Class = iota
	// Fact: already happened; a rule broken means applied and flagged.
	Fact
)

func (c Class) String() string {
	if c == Fact {
		return "fact"
	}
	return "request"
}

// Actor is who caused a mutation: a clerk, a customer (kiosk, web, app), or
// a system process.
type Actor struct {
	Kind string `json:"kind"` // clerk, customer, system
	ID   string `json:"id"`
}

func (a Actor) String() string { return a.Kind + ":" + a.ID }

// Body is the typed content of one business operation. The set is closed:
// only this package's types implement it.
type Body interface {
	// Type is the wire name, e.g. "place_order".
	Type() string
	// Class says whether the operation is a Request or a Fact.
	Class() Class
	// Validate checks the body on its own, without the database.
	Validate() error
	apply(ctx context.Context, a *applier) error
}

// Mutation is one business operation with its identity: a globally unique
// id, the hybrid logical clock time it was made, and who made it.
type Mutation struct {
	ID    MutationID
	HLC   HLC
	Actor Actor
	Body  Body
}

// Validate checks the whole mutation without the database.
func (m Mutation) Validate() error {
	if err := m.ID.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if m.HLC.Wall <= 0 {
		return fmt.Errorf("%w: mutation %s has no timestamp", ErrInvalid, m.ID)
	}
	if m.Actor.Kind == "" {
		return fmt.Errorf("%w: mutation %s has no actor", ErrInvalid, m.ID)
	}
	if m.Body == nil {
		return fmt.Errorf("%w: mutation %s has no body", ErrInvalid, m.ID)
	}
	if err := m.Body.Validate(); err != nil {
		return fmt.Errorf("%w: %s %s: %v", ErrInvalid, m.Body.Type(), m.ID, err)
	}
	return nil
}

// envelope is the wire form of a Mutation (JSON).
type envelope struct {
	V     int             `json:"v"`
	ID    MutationID      `json:"id"`
	HLC   HLC             `json:"hlc"`
	Actor Actor           `json:"actor"`
	Type  string          `json:"type"`
	Body  json.RawMessage `json:"body"`
}

var bodyTypes = map[string]func() Body{}

func register(newBody func() Body) {
	t := newBody().Type()
	if _, dup := bodyTypes[t]; dup {
		panic("retail: mutation type registered twice: " + t)
	}
	bodyTypes[t] = newBody
}

// MutationTypes lists the wire names of every mutation type, sorted.
func MutationTypes() []string {
	ts := make([]string, 0, len(bodyTypes))
	for t := range bodyTypes {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	return ts
}

// NewBody returns an empty body of the named type, or nil if unknown.
func NewBody(typ string) Body {
	if f := bodyTypes[typ]; f != nil {
		return f()
	}
	return nil
}

// Encode returns the wire form of m. It validates m first, so an invalid
// mutation never leaves the node that made it.
func Encode(m Mutation) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	body, err := json.Marshal(m.Body)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", m.ID, err)
	}
	b, err := json.Marshal(envelope{V: EnvelopeVersion, ID: m.ID, HLC: m.HLC, Actor: m.Actor, Type: m.Body.Type(), Body: body})
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", m.ID, err)
	}
	if len(b) > MaxMutationSize {
		return nil, fmt.Errorf("%w: %s is %d bytes, limit %d", ErrTooLarge, m.ID, len(b), MaxMutationSize)
	}
	return b, nil
}

// Decode parses and validates the wire form of a mutation. Every error
// wraps one of ErrTooLarge, ErrMalformed, ErrUnknownVersion, ErrUnknownType
// or ErrInvalid; Decode never panics on any input.
func Decode(b []byte) (Mutation, error) {
	if len(b) > MaxMutationSize {
		return Mutation{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), MaxMutationSize)
	}
	// Read the version first, so a future envelope with other fields is
	// reported as a version problem, not as garbage.
	var head struct {
		V *int `json:"v"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return Mutation{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if head.V == nil {
		return Mutation{}, fmt.Errorf("%w: no envelope version", ErrMalformed)
	}
	if *head.V != EnvelopeVersion {
		return Mutation{}, fmt.Errorf("%w: %d (this program reads %d)", ErrUnknownVersion, *head.V, EnvelopeVersion)
	}
	var env envelope
	if err := strictUnmarshal(b, &env); err != nil {
		return Mutation{}, fmt.Errorf("%w: envelope: %v", ErrMalformed, err)
	}
	newBody := bodyTypes[env.Type]
	if newBody == nil {
		return Mutation{}, fmt.Errorf("%w: %q", ErrUnknownType, env.Type)
	}
	body := newBody()
	if len(env.Body) == 0 {
		return Mutation{}, fmt.Errorf("%w: %s %s: no body", ErrMalformed, env.Type, env.ID)
	}
	if err := strictUnmarshal(env.Body, body); err != nil {
		return Mutation{}, fmt.Errorf("%w: %s %s: %v", ErrMalformed, env.Type, env.ID, err)
	}
	m := Mutation{ID: env.ID, HLC: env.HLC, Actor: env.Actor, Body: body}
	if err := m.Validate(); err != nil {
		return Mutation{}, err
	}
	return m, nil
}

// strictUnmarshal decodes one JSON value, refusing unknown fields and
// trailing data.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after the JSON value")
	}
	return nil
}

// checks collects the problems Validate finds, so one error lists them all.
type checks []string

func (c *checks) require(ok bool, format string, args ...any) {
	if !ok {
		*c = append(*c, fmt.Sprintf(format, args...))
	}
}

func (c checks) err() error {
	if len(c) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(c, "; "))
}
