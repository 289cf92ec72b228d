package devices_test

import (
	"slices"
	"testing"
	"time"

	"github.com/endcap/endcap/devices"
)

// BenchmarkScanLatency measures a scan from the last byte on the wire to
// the Event delivered: a virtual scanner writes a whole frame to a real
// pty in one write; the clock starts when that write returns and stops
// when the Event comes out of the Scanner's channel (tarm/serial read,
// framing, AIM parsing, classification, channel send). One op is 200
// scans, one at a time. It reports the 50th and 99th percentiles and the
// maximum in microseconds (docs/benchmarks.md, "devices: scan latency"):
//
//	go test -run '^$' -bench ScanLatency -benchtime 5x ./devices/
func BenchmarkScanLatency(b *testing.B) {
	for _, c := range []struct {
		name string
		f    devices.Framing
		code string
	}{
		{"suffix=cr", devices.Framing{Suffix: devices.SuffixCR}, ean13},
		{"suffix=crlf,aim", devices.Framing{Suffix: devices.SuffixCRLF, AIM: true}, coupon},
	} {
		b.Run(c.name, func(b *testing.B) {
			rig := startScanRig(b, c.f)
			frame := rig.sim.Frame(c.code, "")
			const scans = 200
			lat := make([]time.Duration, 0, scans*b.N)
			b.ResetTimer()
			for range b.N {
				for range scans {
					if err := rig.sim.Send(frame); err != nil {
						b.Fatal(err)
					}
					sent := time.Now()
					ev := <-rig.events
					lat = append(lat, time.Since(sent))
					if ev.Type != devices.EventScan || ev.Code != c.code {
						b.Fatalf("event %v %q %v", ev.Type, ev.Code, ev.Err)
					}
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			pct := func(p int) float64 {
				i := min(len(lat)-1, len(lat)*p/100)
				return float64(lat[i].Nanoseconds()) / 1e3
			}
			b.ReportMetric(pct(50), "p50-µs")
			b.ReportMetric(pct(99), "p99-µs")
			b.ReportMetric(float64(lat[len(lat)-1].Nanoseconds())/1e3, "max-µs")
		})
	}
}
