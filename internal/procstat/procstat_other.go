//go:build !linux

package procstat

import (
	"syscall"
	"time"
)

func ChildAttr() *syscall.SysProcAttr                  { return nil }
func CPUTime(int) (time.Duration, bool)                { return 0, false }
func MachineCPU() (busy, steal time.Duration, ok bool) { return 0, 0, false }
func Memory(int) (rss, hwm int64, ok bool)             { return 0, 0, false }
func LoadAverage() string                              { return "?" }
