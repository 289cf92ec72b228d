package mqtttest

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// TestLogger returns a logger that writes to t.Log (shown for failed or
// -v tests) until the test ends, and discards after that: a broker's
// goroutines may still log while t.Cleanup closes it.
func TestLogger(t testing.TB) *slog.Logger {
	h := &tbHandler{state: &tbState{t: t}, level: slog.LevelDebug}
	t.Cleanup(func() {
		h.state.mu.Lock()
		h.state.done = true
		h.state.mu.Unlock()
	})
	return slog.New(h)
}

type tbState struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

type tbHandler struct {
	state  *tbState
	level  slog.Level
	attrs  []slog.Attr
	groups string
}

func (h *tbHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *tbHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	for _, a := range h.attrs { // keys already carry their groups
		b.WriteString(" " + a.Key + "=" + a.Value.String())
	}
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + h.groups + a.Key + "=" + a.Value.String())
		return true
	})
	h.state.mu.Lock()
	defer h.state.mu.Unlock()
	if !h.state.done {
		h.state.t.Log(b.String())
	}
	return nil
}

func (h *tbHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	for _, a := range as {
		a.Key = h.groups + a.Key
		c.attrs = append(c.attrs[:len(c.attrs):len(c.attrs)], a)
	}
	return &c
}

func (h *tbHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.groups += name + "."
	return &c
}
