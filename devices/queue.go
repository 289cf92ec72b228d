package devices

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Job is a print job: ESC/POS bytes with an id.
type Job struct {
	// ID names the job, and makes printing it once: a queue holds one job
	// of an id, and refuses an id it printed recently. Use what the receipt
	// is for ("sale-S7-000123", "coupons-V-88"); a reprint the customer
	// asked for needs an id of its own ("sale-S7-000123-copy1"). 1 to 100
	// characters of A-Z a-z 0-9 . _ -.
	ID string `json:"id"`
	// Title is what a clerk sees in the queue ("Sale S7-000123").
	Title string `json:"title,omitempty"`
	// Data is the ESC/POS stream (NewBuilder, or a template's ESCPOS).
	Data []byte `json:"data"`
	// Created is set by Enqueue.
	Created time.Time `json:"created"`
	// Attempts, LastAttempt and LastError record failed tries to print.
	Attempts    int       `json:"attempts,omitempty"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	LastError   string    `json:"last_error,omitempty"`

	file string // its file in the queue directory
}

// Queue errors.
var (
	// ErrAlreadyPrinted: Enqueue of an id the queue printed (among its
	// last doneKeep jobs).
	ErrAlreadyPrinted = errors.New("print job already printed")
	// ErrJobNotFound: no queued job has that id.
	ErrJobNotFound = errors.New("print job not found")
)

const (
	jobSuffix = ".job"
	doneFile  = "printed.log"
	doneKeep  = 1000 // ids remembered as printed
)

// Queue is a durable FIFO of print jobs: a directory with one file a job
// (written to a temp file, fsynced, renamed, directory fsynced), so a
// receipt survives a crash or a power cut, and a log of the ids printed.
// A job leaves the queue only when Done says the printer confirmed it.
//
// Printing is once per id while the process runs and across restarts,
// with one window: a crash after the printer confirmed a job but before
// Done recorded it prints that job again on restart.
//
// A Queue is safe for concurrent use within one process; two processes
// must not share a directory.
type Queue struct {
	dir string
	now func() time.Time

	mu   sync.Mutex
	seq  uint64
	done []string // printed ids, oldest first
}

// OpenQueue opens (creating it if needed) the queue in dir. now stamps
// jobs; nil means time.Now.
func OpenQueue(dir string, now func() time.Time) (*Queue, error) {
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open print queue %s: %w", dir, err)
	}
	q := &Queue{dir: dir, now: now}
	if err := q.load(); err != nil {
		return nil, fmt.Errorf("open print queue %s: %w", dir, err)
	}
	return q, nil
}

// Dir is the queue's directory.
func (q *Queue) Dir() string { return q.dir }

func (q *Queue) load() error {
	ents, err := os.ReadDir(q.dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".tmp-") {
			os.Remove(filepath.Join(q.dir, name)) // a write that never finished
			continue
		}
		if seq, _, ok := parseJobName(name); ok && seq > q.seq {
			q.seq = seq
		}
	}
	if err := q.loadDone(); err != nil {
		return err
	}
	// Finish removals a crash interrupted: jobs already logged as printed.
	jobs, err := q.jobs(false)
	if err != nil {
		return err
	}
	for _, j := range jobs {
		if slices.Contains(q.done, j.ID) {
			if err := os.Remove(filepath.Join(q.dir, j.file)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (q *Queue) loadDone() error {
	f, err := os.Open(filepath.Join(q.dir, doneFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if id := strings.TrimSpace(sc.Text()); validJobID(id) {
			q.done = append(q.done, id)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(q.done) > doneKeep {
		q.done = slices.Clone(q.done[len(q.done)-doneKeep:])
		return writeFileSync(q.dir, doneFile, []byte(strings.Join(q.done, "\n")+"\n"))
	}
	return nil
}

func validJobID(id string) bool {
	if id == "" || len(id) > 100 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return id != "." && id != ".."
}

func jobName(seq uint64, id string) string { return fmt.Sprintf("%016d-%s%s", seq, id, jobSuffix) }

func parseJobName(name string) (seq uint64, id string, ok bool) {
	base, found := strings.CutSuffix(name, jobSuffix)
	if !found || len(base) < 18 || base[16] != '-' {
		return 0, "", false
	}
	seq, err := strconv.ParseUint(base[:16], 10, 64)
	if err != nil {
		return 0, "", false
	}
	return seq, base[17:], true
}

// Enqueue adds a job at the back of the queue and returns once it is on
// disk. Enqueue of an id already queued does nothing and returns nil (so a
// retried enqueue is harmless); of an id printed recently, ErrAlreadyPrinted.
func (q *Queue) Enqueue(ctx context.Context, j Job) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !validJobID(j.ID) {
		return fmt.Errorf("print job id %q: want 1 to 100 of A-Z a-z 0-9 . _ -", j.ID)
	}
	if len(j.Data) == 0 {
		return fmt.Errorf("print job %s: no data", j.ID)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if slices.Contains(q.done, j.ID) {
		return fmt.Errorf("print job %s: %w", j.ID, ErrAlreadyPrinted)
	}
	if _, err := q.find(j.ID); err == nil {
		return nil
	} else if !errors.Is(err, ErrJobNotFound) {
		return err
	}
	q.seq++
	j.Created = q.now()
	j.Attempts, j.LastAttempt, j.LastError = 0, time.Time{}, ""
	return q.write(jobName(q.seq, j.ID), j)
}

func (q *Queue) write(name string, j Job) error {
	data, err := json.Marshal(j)
	if err != nil {
		return err
	}
	if err := writeFileSync(q.dir, name, data); err != nil {
		return fmt.Errorf("print job %s: %w", j.ID, err)
	}
	return nil
}

// writeFileSync replaces dir/name with data durably: temp file, fsync,
// rename, fsync of the directory.
func writeFileSync(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// jobs reads every queued job in order; withData false leaves Data nil.
func (q *Queue) jobs(withData bool) ([]Job, error) {
	ents, err := os.ReadDir(q.dir)
	if err != nil {
		return nil, err
	}
	var out []Job
	for _, e := range ents { // ReadDir sorts by name: by sequence
		if _, _, ok := parseJobName(e.Name()); !ok {
			continue
		}
		j, err := q.read(e.Name())
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !withData {
			j.Data = nil
		}
		out = append(out, j)
	}
	return out, nil
}

func (q *Queue) read(name string) (Job, error) {
	data, err := os.ReadFile(filepath.Join(q.dir, name))
	if err != nil {
		return Job{}, err
	}
	var j Job
	if err := json.Unmarshal(data, &j); err != nil {
		return Job{}, fmt.Errorf("print job file %s: %w", name, err)
	}
	j.file = name
	return j, nil
}

func (q *Queue) find(id string) (Job, error) {
	ents, err := os.ReadDir(q.dir)
	if err != nil {
		return Job{}, err
	}
	for _, e := range ents {
		if _, jid, ok := parseJobName(e.Name()); ok && jid == id {
			return q.read(e.Name())
		}
	}
	return Job{}, fmt.Errorf("print job %s: %w", id, ErrJobNotFound)
}

// List returns the queued jobs, oldest (next to print) first, without
// their Data.
func (q *Queue) List() ([]Job, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.jobs(false)
}

// ListQueue lists the jobs queued in dir without opening the queue: it
// changes nothing, so it may look at the queue of another process (cmd/devsim
// shows the edge's queue this way). A missing dir is an empty queue.
func ListQueue(dir string) ([]Job, error) {
	q := &Queue{dir: dir}
	jobs, err := q.jobs(false)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return jobs, err
}

// Len is the number of queued jobs.
func (q *Queue) Len() (int, error) {
	jobs, err := q.List()
	return len(jobs), err
}

// Next returns the oldest job, with its Data; ok is false when the queue
// is empty.
func (q *Queue) Next() (j Job, ok bool, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	ents, err := os.ReadDir(q.dir)
	if err != nil {
		return Job{}, false, err
	}
	for _, e := range ents {
		if _, _, isJob := parseJobName(e.Name()); !isJob {
			continue
		}
		j, err := q.read(e.Name())
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		return j, err == nil, err
	}
	return Job{}, false, nil
}

// Failed records a failed attempt to print job id (shown by List).
func (q *Queue) Failed(id string, cause error) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	j, err := q.find(id)
	if err != nil {
		return err
	}
	j.Attempts++
	j.LastAttempt = q.now()
	j.LastError = cause.Error()
	return q.write(j.file, j)
}

// Done records that the printer confirmed job id printed, and removes it
// from the queue. The id is logged as printed first, so a crash between
// the two steps does not print it again.
func (q *Queue) Done(id string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	j, err := q.find(id)
	if err != nil {
		return err
	}
	if err := q.appendDone(id); err != nil {
		return fmt.Errorf("print job %s: log printed: %w", id, err)
	}
	if err := os.Remove(filepath.Join(q.dir, j.file)); err != nil {
		return fmt.Errorf("print job %s: %w", id, err)
	}
	return syncDir(q.dir)
}

// Cancel removes job id without printing it (a clerk gave up on it).
func (q *Queue) Cancel(id string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	j, err := q.find(id)
	if err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(q.dir, j.file)); err != nil {
		return fmt.Errorf("print job %s: %w", id, err)
	}
	return syncDir(q.dir)
}

func (q *Queue) appendDone(id string) error {
	f, err := os.OpenFile(filepath.Join(q.dir, doneFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(id + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	q.done = append(q.done, id)
	if len(q.done) > 2*doneKeep {
		q.done = slices.Clone(q.done[len(q.done)-doneKeep:])
		return writeFileSync(q.dir, doneFile, []byte(strings.Join(q.done, "\n")+"\n"))
	}
	return nil
}
