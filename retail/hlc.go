package retail

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// HLC is a hybrid logical clock timestamp: wall-clock milliseconds plus a
// logical counter that orders events within one millisecond and across
// nodes whose clocks disagree. HLCs compare with Compare; the zero HLC is
// before every other.
type HLC struct {
	Wall    int64  `json:"w"` // unix milliseconds
	Logical uint32 `json:"l"`
}

// Compare returns -1, 0 or +1 as h is before, equal to or after o.
func (h HLC) Compare(o HLC) int {
	switch {
	case h.Wall < o.Wall:
		return -1
	case h.Wall > o.Wall:
		return 1
	case h.Logical < o.Logical:
		return -1
	case h.Logical > o.Logical:
		return 1
	}
	return 0
}

// Time is the wall-clock part as a time.Time.
func (h HLC) Time() time.Time { return time.UnixMilli(h.Wall).UTC() }

// String formats h as "wall.logical", the form stored in the database,
// with the logical counter zero-padded to its full width (10 digits), so
// it sorts as text in time order for walls of the same number of digits.
func (h HLC) String() string { return fmt.Sprintf("%d.%010d", h.Wall, h.Logical) }

// ParseHLC parses the String form.
func ParseHLC(s string) (HLC, error) {
	w, l, ok := strings.Cut(s, ".")
	if !ok {
		return HLC{}, fmt.Errorf("hlc %q: want wall.logical", s)
	}
	wall, err := strconv.ParseInt(w, 10, 64)
	if err != nil {
		return HLC{}, fmt.Errorf("hlc %q: %w", s, err)
	}
	logical, err := strconv.ParseUint(l, 10, 32)
	if err != nil {
		return HLC{}, fmt.Errorf("hlc %q: %w", s, err)
	}
	return HLC{Wall: wall, Logical: uint32(logical)}, nil
}

// Clock issues HLC timestamps. It is safe for concurrent use. Now is the
// physical clock; nil means time.Now.
type Clock struct {
	Now func() time.Time

	mu   sync.Mutex
	last HLC
}

func (c *Clock) wall() int64 {
	if c.Now == nil {
		return time.Now().UnixMilli()
	}
	return c.Now().UnixMilli()
}

// Tick returns a timestamp for a local event, after every timestamp this
// clock has issued or observed.
func (c *Clock) Tick() HLC {
	c.mu.Lock()
	defer c.mu.Unlock()
	pt := c.wall()
	if pt > c.last.Wall {
		c.last = HLC{Wall: pt}
	} else {
		c.last.Logical++
	}
	return c.last
}

// Observe merges a timestamp received from another node, so the next Tick
// comes after it, and returns the merged timestamp.
func (c *Clock) Observe(remote HLC) HLC {
	c.mu.Lock()
	defer c.mu.Unlock()
	pt := c.wall()
	switch {
	case pt > c.last.Wall && pt > remote.Wall:
		c.last = HLC{Wall: pt}
	case remote.Wall > c.last.Wall:
		c.last = HLC{Wall: remote.Wall, Logical: remote.Logical + 1}
	case c.last.Wall > remote.Wall:
		c.last.Logical++
	default: // equal walls
		c.last.Logical = max(c.last.Logical, remote.Logical) + 1
	}
	return c.last
}
