//go:build !linux

package main

import (
	"syscall"
	"time"
)

func childAttr() *syscall.SysProcAttr                  { return nil }
func cpuTime(int) (time.Duration, bool)                { return 0, false }
func machineCPU() (busy, steal time.Duration, ok bool) { return 0, 0, false }
func memory(int) (rss, hwm int64, ok bool)             { return 0, 0, false }
func loadAverage() string                              { return "?" }
