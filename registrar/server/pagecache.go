package server

import (
	"container/list"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Full-table answers are what a proxy asks for when it starts, falls too far behind
// or sees a new lineage; after a lineage change every proxy asks at once. Three
// bounds keep that from costing the registrar more memory than it can spare:
//
//   - each page is encoded once per snapshot and shared (pageCache): proxies asking
//     for the same page get the same bytes, so a thousand proxies cost one encoding;
//   - at most maxFull full-table answers are sent at once (fullSlots); a request
//     that finds no slot free within a second is answered 503 with Retry-After,
//     which the filter treats as a failed poll and retries with backoff;
//   - every answer must be taken by the client within the answer write timeout
//     (writeJSON sets the deadline), so a client that does not read loses its
//     connection and its slot instead of holding them.
//
// Memory for full tables is then at most the cache's bytes plus one page per slot.

// Defaults of the full-table bounds.
const (
	// DefaultMaxFullAnswers is how many full-table answers may be sent at once.
	DefaultMaxFullAnswers = 32
	// DefaultAnswerWriteTimeout is how long a client has to take one answer.
	DefaultAnswerWriteTimeout = 30 * time.Second
	// pageCachePages is the page cache's bound in pages of -page-bytes.
	pageCachePages = 8
	// slotWait is how long a full-table request waits for a slot before its 503.
	slotWait = time.Second
	// fullRetryAfter is the Retry-After of a full-table request refused for load.
	fullRetryAfter = 2 * time.Second
)

// pageKey names one encoded page: the protocol version it is encoded for, the lineage
// and revision of the snapshot and the name it starts at ("" for the first page).
type pageKey struct {
	version int
	lineage string
	rev     uint64
	start   string
}

// pageEntry is one page being encoded (ready open) or encoded (ready closed).
type pageEntry struct {
	key   pageKey
	ready chan struct{}
	body  []byte
	err   error // the encoding failed: the entry is dropped, its waiters get err
	size  int   // the bytes the cache counts for it (0 until encoded)
	elem  *list.Element
}

// pageCache holds encoded pages up to max bytes, dropping the least recently used.
// Requests for a page being encoded wait for that one encoding.
type pageCache struct {
	mu    sync.Mutex
	byKey map[pageKey]*pageEntry
	lru   *list.List // of *pageEntry, most recently used at the front
	bytes int
	max   int
	// encoded counts the encodings made (a test reads it).
	encoded atomic.Uint64
}

func newPageCache(max int) *pageCache {
	return &pageCache{byKey: map[pageKey]*pageEntry{}, lru: list.New(), max: max}
}

// get returns the page k, calling encode when no one has (or is encoding) it.
func (c *pageCache) get(k pageKey, encode func() ([]byte, error)) ([]byte, error) {
	c.mu.Lock()
	if e := c.byKey[k]; e != nil {
		c.lru.MoveToFront(e.elem)
		c.mu.Unlock()
		<-e.ready
		return e.body, e.err
	}
	e := &pageEntry{key: k, ready: make(chan struct{})}
	e.elem = c.lru.PushFront(e)
	c.byKey[k] = e
	c.mu.Unlock()

	c.encoded.Add(1)
	e.body, e.err = encode()
	c.mu.Lock()
	switch {
	case e.err != nil:
		c.drop(e)
	case c.byKey[k] == e: // not dropped while it was encoded
		e.size = len(e.body)
		c.bytes += e.size
		for c.bytes > c.max {
			c.drop(c.lru.Back().Value.(*pageEntry))
		}
	}
	c.mu.Unlock()
	close(e.ready)
	return e.body, e.err
}

// drop removes e (its waiters still get its body). Holds mu.
func (c *pageCache) drop(e *pageEntry) {
	if c.byKey[e.key] != e {
		return
	}
	c.lru.Remove(e.elem)
	delete(c.byKey, e.key)
	c.bytes -= e.size
}

// held is how many bytes of pages the cache holds.
func (c *pageCache) held() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// fullSlots bounds the full-table answers sent at once.
type fullSlots chan struct{}

// take reserves a slot, waiting up to slotWait for one (answers handed to the
// kernel at once free theirs in microseconds, so a burst of proxies woken together
// is served), or answers 503 with Retry-After and returns false. The caller frees a
// slot it took with free.
func (s fullSlots) take(w http.ResponseWriter) bool {
	select {
	case s <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(slotWait)
	defer t.Stop()
	select {
	case s <- struct{}{}:
		return true
	case <-t.C:
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(fullRetryAfter/time.Second)))
	writeFailure(w, http.StatusServiceUnavailable, "the registrar is sending as many full tables as it may at once ("+
		strconv.Itoa(cap(s))+"); retry in "+strconv.Itoa(int(fullRetryAfter/time.Second))+" s")
	return false
}

func (s fullSlots) free() { <-s }
