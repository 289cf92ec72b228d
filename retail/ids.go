package retail

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// MutationID names a mutation uniquely in a region: the node that wrote it
// and that node's sequence number, which starts at 1 and never repeats.
// Its text form is "origin/seq".
type MutationID struct {
	Origin string
	Seq    uint64
}

func (id MutationID) String() string { return id.Origin + "/" + strconv.FormatUint(id.Seq, 10) }

// IsZero reports whether id is unset.
func (id MutationID) IsZero() bool { return id.Origin == "" && id.Seq == 0 }

// Validate checks that the origin is a usable node name and seq is set.
func (id MutationID) Validate() error {
	if id.Origin == "" || len(id.Origin) > 64 || strings.ContainsAny(id.Origin, "/ \t\r\n+#") {
		return fmt.Errorf("mutation id origin %q: want 1-64 characters without '/', '+', '#' or spaces", id.Origin)
	}
	if id.Seq == 0 {
		return fmt.Errorf("mutation id %s: sequence starts at 1", id)
	}
	return nil
}

// ParseMutationID parses the "origin/seq" form.
func ParseMutationID(s string) (MutationID, error) {
	i := strings.LastIndexByte(s, '/')
	if i < 0 {
		return MutationID{}, fmt.Errorf("mutation id %q: want origin/seq", s)
	}
	seq, err := strconv.ParseUint(s[i+1:], 10, 64)
	if err != nil {
		return MutationID{}, fmt.Errorf("mutation id %q: %w", s, err)
	}
	id := MutationID{Origin: s[:i], Seq: seq}
	return id, id.Validate()
}

// MarshalText writes "origin/seq"; the zero id is the empty string.
func (id MutationID) MarshalText() ([]byte, error) {
	if id.IsZero() {
		return []byte{}, nil
	}
	return []byte(id.String()), nil
}

// UnmarshalText reads "origin/seq"; the empty string is the zero id.
func (id *MutationID) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*id = MutationID{}
		return nil
	}
	v, err := ParseMutationID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// NewID returns a new entity id (a UUIDv7: time-ordered, globally unique
// without coordination), for records created offline at an edge. Apply
// never calls it: ids travel inside mutations, so every node stores the same.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }
