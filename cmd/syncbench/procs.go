package main

import (
	"errors"
	"strings"

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

// errNotYet is what a poll condition returns while it waits.
var errNotYet = errors.New("not yet")
