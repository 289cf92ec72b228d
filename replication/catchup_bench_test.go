package replication

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/endcap/endcap/internal/scenario"
	"github.com/endcap/endcap/retail"
)

// catchupFixture is the change log of the seed and n sales, as the
// catch-up answers carry it: messages of up to 500 entries (1,000 are over MaxPayload).
func catchupFixture(tb testing.TB, n int) (entries []Change, msgs [][]byte) {
	tb.Helper()
	bodies := scenario.Seed()
	for i := range n {
		store := scenario.Stores[i%len(scenario.Stores)]
		bodies = append(bodies, scenario.Sale(fmt.Sprintf("bench-%d", i), store, "", 1, ""))
	}
	es, err := scenario.Changes(tb.TempDir(), bodies)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range es {
		entries = append(entries, Change{Seq: e.Seq, MutationID: e.MutationID, Status: e.Status, Changes: e.Changes})
	}
	for i := 0; i < len(entries); i += 500 {
		part := entries[i:min(i+500, len(entries))]
		b, err := Encode(Message{Kind: KindChanges, Region: "test", Entries: part, Head: uint64(len(entries))})
		if err != nil {
			tb.Fatal(err)
		}
		msgs = append(msgs, b)
	}
	return entries, msgs
}

// BenchmarkCatchup is a returning edge's work per change-log entry (a
// sale: 5 row changes): decoding the catch-up answers and applying them.
func BenchmarkCatchup(b *testing.B) {
	const n = 5000
	entries, msgs := catchupFixture(b, n)
	ctx := context.Background()
	b.Run("decode", func(b *testing.B) {
		c0 := cpuTime()
		for b.Loop() {
			for _, p := range msgs {
				if _, err := Decode("test", ClassDown, p); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(entries)), "ns/entry")
		b.ReportMetric(float64((cpuTime()-c0).Nanoseconds())/float64(b.N*len(entries)), "cpu-ns/entry")
	})
	// The general decoder (encoding/json), which Decode used for every
	// message before parseChanges, for comparison.
	b.Run("decode-json", func(b *testing.B) {
		c0 := cpuTime()
		for b.Loop() {
			for _, p := range msgs {
				if _, err := decodeJSON(p); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(entries)), "ns/entry")
		b.ReportMetric(float64((cpuTime()-c0).Nanoseconds())/float64(b.N*len(entries)), "cpu-ns/entry")
	})
	// The same entries one row a statement (retail.ApplyChanges), as
	// ApplyFeed wrote them before feedApplier, for comparison.
	b.Run("onerow-1000", func(b *testing.B) {
		var cpu time.Duration
		for b.Loop() {
			b.StopTimer()
			r, err := OpenReplica(ctx, ReplicaConfig{Path: filepath.Join(b.TempDir(), "e.db"), Region: "test", Edge: "E1"})
			if err != nil {
				b.Fatal(err)
			}
			db, done := r.DB()
			b.StartTimer()
			c0 := cpuTime()
			for i := 0; i < len(entries); i += 1000 {
				err := db.UpdateRelaxed(ctx, func(tx *retail.Tx) error {
					for _, e := range entries[i:min(i+1000, len(entries))] {
						if err := retail.ApplyChanges(ctx, tx, e.Changes); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			cpu += cpuTime() - c0
			b.StopTimer()
			done()
			r.Close()
			b.StartTimer()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(entries)), "ns/entry")
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*len(entries)), "cpu-ns/entry")
	})
	for _, chunk := range []int{250, 1000} {
		b.Run(fmt.Sprintf("apply-%d", chunk), func(b *testing.B) {
			var cpu time.Duration
			for b.Loop() {
				b.StopTimer()
				r, err := OpenReplica(ctx, ReplicaConfig{Path: filepath.Join(b.TempDir(), "e.db"), Region: "test", Edge: "E1"})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				c0 := cpuTime()
				for i := 0; i < len(entries); i += chunk {
					if _, err := r.ApplyFeed(ctx, entries[i:min(i+chunk, len(entries))], false); err != nil {
						b.Fatal(err)
					}
				}
				cpu += cpuTime() - c0
				b.StopTimer()
				r.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(entries)), "ns/entry")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*len(entries)), "cpu-ns/entry")
		})
	}
}

// cpuTime is the CPU time this process has used (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
