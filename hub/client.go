package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Client talks to a hub node's operator API. The zero HTTP client means
// http.DefaultClient. It is safe for concurrent use.
type Client struct {
	Addr  string // host:port or http://host:port
	Token string
	HTTP  *http.Client
}

// APIError is an error response from the hub.
type APIError struct {
	Code   int
	Msg    string
	Leader string // the leader's API address, when the hub said
}

func (e *APIError) Error() string {
	return fmt.Sprintf("hub: %d %s: %s", e.Code, http.StatusText(e.Code), e.Msg)
}

// Is lets errors.Is(err, ErrNotLeader) and errors.Is(err, ErrCompacted) work across the wire.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotLeader:
		return e.Code == http.StatusServiceUnavailable && strings.Contains(e.Msg, ErrNotLeader.Error())
	case ErrCompacted:
		return e.Code == http.StatusGone
	}
	return false
}

func (c *Client) url(path string) string {
	if strings.HasPrefix(c.Addr, "http://") || strings.HasPrefix(c.Addr, "https://") {
		return strings.TrimSuffix(c.Addr, "/") + path
	}
	return "http://" + c.Addr + path
}

// Do sends a request with the token and decodes a JSON answer into out.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(path), body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Content-Type", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var e apiError
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return &APIError{Code: resp.StatusCode, Msg: e.Error, Leader: e.Leader}
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Status is GET /v1/status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, &st)
	return st, err
}

// Submit is POST /v1/mutations: encoded mutations, one result each.
func (c *Client) Submit(ctx context.Context, muts []json.RawMessage) ([]MutationResult, error) {
	var resp SubmitResponse
	if err := c.do(ctx, http.MethodPost, "/v1/mutations", muts, &resp); err != nil {
		return nil, err
	}
	if len(resp.Results) != len(muts) {
		return nil, fmt.Errorf("hub: %d results for %d mutations", len(resp.Results), len(muts))
	}
	return resp.Results, nil
}

// Changes is GET /v1/changes.
func (c *Client) Changes(ctx context.Context, from uint64, limit int) (ChangesResponse, error) {
	var resp ChangesResponse
	err := c.do(ctx, http.MethodGet, fmt.Sprintf("/v1/changes?from=%d&limit=%d", from, limit), nil, &resp)
	return resp, err
}

// Join asks the cluster to add a voter.
func (c *Client) Join(ctx context.Context, m Member) (Status, error) {
	var st Status
	err := c.do(ctx, http.MethodPost, "/v1/join", m, &st)
	return st, err
}

// Remove asks the cluster to remove a server.
func (c *Client) Remove(ctx context.Context, id string) (Status, error) {
	var st Status
	err := c.do(ctx, http.MethodPost, "/v1/remove", map[string]string{"id": id}, &st)
	return st, err
}

// TransferLeadership hands leadership to id, or to any up-to-date follower if empty.
func (c *Client) TransferLeadership(ctx context.Context, id string) (Status, error) {
	var st Status
	err := c.do(ctx, http.MethodPost, "/v1/leader-transfer", map[string]string{"id": id}, &st)
	return st, err
}

// TakeSnapshot asks the node to snapshot now.
func (c *Client) TakeSnapshot(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/snapshot", nil, nil)
}

// DownloadSnapshot streams GET /v1/snapshot into dst (checked; see
// ReadSnapshot), with edge credentials when edgeID is set and the
// operator token otherwise.
func (c *Client) DownloadSnapshot(ctx context.Context, edgeID, secret, dst string) (SnapshotMeta, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url("/v1/snapshot"), nil)
	if err != nil {
		return SnapshotMeta{}, err
	}
	if edgeID != "" {
		req.SetBasicAuth(edgeID, secret)
	} else {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return SnapshotMeta{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return SnapshotMeta{}, &APIError{Code: resp.StatusCode, Msg: strings.TrimSpace(string(b))}
	}
	return ReadSnapshot(ctx, resp.Body, dst)
}

// Stores is GET /v1/stores: the edges this node has heard of.
func (c *Client) Stores(ctx context.Context) (StoresResponse, error) {
	var resp StoresResponse
	err := c.do(ctx, http.MethodGet, "/v1/stores", nil, &resp)
	return resp, err
}

// Checksum is GET /v1/checksum.
func (c *Client) Checksum(ctx context.Context) (ChecksumResponse, error) {
	var resp ChecksumResponse
	err := c.do(ctx, http.MethodGet, "/v1/checksum", nil, &resp)
	return resp, err
}

// CheckConverged asks every node for its state checksum and returns them,
// in order, with an error when any two nodes differ in applied index or
// checksum: converged nodes have applied the same log to the same state.
func CheckConverged(ctx context.Context, nodes ...*Client) ([]ChecksumResponse, error) {
	sums := make([]ChecksumResponse, len(nodes))
	for i, c := range nodes {
		cs, err := c.Checksum(ctx)
		if err != nil {
			return sums, fmt.Errorf("%s: %w", c.Addr, err)
		}
		sums[i] = cs
		if first := sums[0]; cs.AppliedIndex != first.AppliedIndex || cs.Checksum != first.Checksum {
			return sums, fmt.Errorf("%s at index %d sum %.12s; %s at %d sum %.12s",
				c.Addr, cs.AppliedIndex, cs.Checksum, nodes[0].Addr, first.AppliedIndex, first.Checksum)
		}
	}
	return sums, nil
}
