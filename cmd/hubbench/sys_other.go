//go:build !linux

package main

import (
	"syscall"
	"time"
)

func childAttr() *syscall.SysProcAttr { return nil }

// cpuTime is not measured on this system.
func cpuTime(pid int) (time.Duration, bool) { return 0, false }

func machineCPU() (busy, steal time.Duration, ok bool) { return 0, 0, false }
