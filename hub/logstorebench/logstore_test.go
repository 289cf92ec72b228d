// Package logstorebench compares raft log stores for the hub: raft-wal
// (what the hub uses) and raft-boltdb/v2 (hashicorp's older default). It
// is a module of its own so that raft-boltdb never enters the main
// module's dependencies. Run it with
//
//	cd hub/logstorebench && go test -run '^$' -bench . -benchtime 3s
package logstorebench

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
)

// entrySize is a raft entry's payload: about one small group commit.
const entrySize = 1024

type store interface {
	raft.LogStore
	Close() error
}

// walStore is raft-wal as the hub opens it (bolt for its metadata).
type walStore struct {
	*wal.WAL
	meta *metadb.BoltMetaDB
}

func (s walStore) Close() error {
	err := s.WAL.Close()
	if merr := s.meta.Close(); err == nil {
		err = merr
	}
	return err
}

var stores = []struct {
	name string
	open func(dir string) (store, error)
}{
	{"raft-wal", func(dir string) (store, error) {
		meta := &metadb.BoltMetaDB{}
		w, err := wal.Open(dir, wal.WithMetaStore(meta))
		if err != nil {
			return nil, err
		}
		return walStore{w, meta}, nil
	}},
	{"raft-boltdb", func(dir string) (store, error) {
		return raftboltdb.NewBoltStore(filepath.Join(dir, "raft.db"))
	}},
}

func open(b *testing.B, i int) store {
	b.Helper()
	s, err := stores[i].open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func payload() []byte {
	p := make([]byte, entrySize)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range p {
		p[i] = byte(r.IntN(256))
	}
	return p
}

// fill appends entries next..next+n-1 in batches of batch.
func fill(b *testing.B, s store, next uint64, n, batch int, data []byte) uint64 {
	b.Helper()
	logs := make([]*raft.Log, 0, batch)
	for n > 0 {
		logs = logs[:0]
		for range min(batch, n) {
			logs = append(logs, &raft.Log{Index: next, Term: 1, Type: raft.LogCommand, Data: data})
			next++
		}
		if err := s.StoreLogs(logs); err != nil {
			b.Fatal(err)
		}
		n -= len(logs)
	}
	return next
}

// BenchmarkStoreLogs appends batches of 1 and 64 entries of 1 KiB; every
// StoreLogs call is durable (fsync) in both stores, as raft needs.
func BenchmarkStoreLogs(b *testing.B) {
	data := payload()
	for i, st := range stores {
		for _, batch := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/batch=%d", st.name, batch), func(b *testing.B) {
				s := open(b, i)
				next := fill(b, s, 1, 1000, 64, data) // not empty
				calls := 0
				b.SetBytes(int64(batch * entrySize))
				for b.Loop() {
					next = fill(b, s, next, batch, batch, data)
					calls++
				}
				b.ReportMetric(float64(calls*batch)/b.Elapsed().Seconds(), "entries/s")
			})
		}
	}
}

// BenchmarkGetLog reads random entries of a log of 10,000.
func BenchmarkGetLog(b *testing.B) {
	const n = 10_000
	data := payload()
	for i, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			s := open(b, i)
			fill(b, s, 1, n, 64, data)
			r := rand.New(rand.NewPCG(3, 4))
			var l raft.Log
			reads := 0
			for b.Loop() {
				idx := 1 + r.Uint64N(n)
				if err := s.GetLog(idx, &l); err != nil {
					b.Fatal(err)
				}
				if l.Index != idx || len(l.Data) != entrySize {
					b.Fatalf("GetLog(%d): index %d, %d bytes", idx, l.Index, len(l.Data))
				}
				reads++
			}
			b.ReportMetric(float64(reads)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}
