package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/endcap/endcap/internal/procrun"
)

// children is every process syncbench starts, so that every exit path
// (return, error, SIGINT) can kill them all.
var children procrun.Group

// errAddrInUse tells whether a start failed because a port picked free
// was taken before the process bound it.
func errAddrInUse(err error) bool {
	return err != nil && strings.Contains(err.Error(), "address already in use")
}

// poll calls cond every interval until it returns nil, the timeout
// passes, or ctx ends.
func poll(ctx context.Context, what string, timeout, interval time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %s: %w", what, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// errNotYet is what a poll condition returns while it waits.
var errNotYet = errors.New("not yet")
