package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/endcap/endcap/replication"
)

// syncBuffer is a bytes.Buffer safe to write and read from two goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// printed waits for the line starting with prefix and returns its last field.
func printed(t *testing.T, out *syncBuffer, prefix string, done <-chan error) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for line := range strings.SplitSeq(out.String(), "\n") {
			if f := strings.Fields(line); strings.HasPrefix(line, prefix) && len(f) > 1 {
				return f[len(f)-1]
			}
		}
		select {
		case err := <-done:
			t.Fatalf("broker ended: %v\n%s", err, out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker printed no %q line:\n%s", prefix, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRun starts the real command on free ports, connects over TCP and
// WebSocket with a provisioned user, and stops it by cancelling.
func TestRun(t *testing.T) {
	t.Parallel()
	pwFile := filepath.Join(t.TempDir(), "passwords")
	pw, pass := &replication.Passwords{}, replication.GeneratePassword()
	if err := pw.Set("hub", pass); err != nil {
		t.Fatal(err)
	}
	if err := pw.Save(pwFile); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--region", "r1", "--passwords", pwFile, "--listen", "127.0.0.1:0", "--ws-listen", "127.0.0.1:0"}, &stdout, &stderr)
	}()
	for _, prefix := range []string{"mqtt ", "websocket "} {
		url := printed(t, &stdout, prefix, done)
		for _, p := range []string{pass, "wrong"} {
			o := paho.NewClientOptions().AddBroker(url).SetClientID("hub-" + prefix[:2]).SetUsername("hub").SetPassword(p).
				SetProtocolVersion(4).SetConnectTimeout(5 * time.Second)
			c := paho.NewClient(o)
			tok := c.Connect()
			if !tok.WaitTimeout(10 * time.Second) {
				t.Fatalf("%s: connect timed out", url)
			}
			if (tok.Error() == nil) != (p == pass) {
				t.Errorf("%s with password %q: %v", url, p, tok.Error())
			}
			if tok.Error() == nil {
				pub := c.Publish("endcap/r1/feed", 1, false, "x")
				if !pub.WaitTimeout(10*time.Second) || pub.Error() != nil {
					t.Errorf("%s: publish: %v", url, pub.Error())
				}
				c.Disconnect(50)
			}
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	if !strings.Contains(stderr.String(), "mqtt connect refused") || !strings.Contains(stderr.String(), "wrong password") {
		t.Errorf("stderr lacks the refused connect:\n%s", &stderr)
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := run(t.Context(), []string{"--help"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Usage: broker", "--passwords FILE", "--listen ADDR", "--ws-listen ADDR", "--tls-cert FILE", "--allow-anonymous", "Examples:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "--passwords FILE is required"},
		{[]string{"--allow-anonymous", "--listen", "", "--ws-listen", ""}, "nothing to listen on"},
		{[]string{"--allow-anonymous", "--log-level", "loud"}, `--log-level "loud"`},
		{[]string{"--nope"}, "flag provided but not defined"},
		{[]string{"--allow-anonymous", "extra"}, `unexpected argument "extra"`},
	} {
		var out bytes.Buffer
		err := run(t.Context(), tc.args, &out, &out)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want a usage error with %q", tc.args, err, tc.want)
		}
	}
	// A broker that cannot start is an error, not a usage error.
	err := run(t.Context(), []string{"--passwords", filepath.Join(t.TempDir(), "missing")}, &out, &out)
	if err == nil || errors.Is(err, errUsage) {
		t.Errorf("missing password file: %v", err)
	}
}
