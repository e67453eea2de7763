package webhookreceiver

import (
	"errors"
	"io"
	"net/http"
	"sync/atomic"
)

// firstChunk is what is reserved first for a body of unknown length (chunked); it doubles as the body grows.
const firstChunk = 16 << 10

// bufferBudget counts the bytes of request bodies buffered at once across all requests, so that no
// sender, authenticated or not, can make the receiver hold more than --receiver-max-buffer of them.
type bufferBudget struct {
	// used is what is reserved now; peak the most ever reserved at once.
	used, peak atomic.Int64
}

// take reserves n bytes and reports whether they fit under limit (0: no limit).
func (b *bufferBudget) take(n, limit int64) bool {
	for {
		u := b.used.Load()
		if limit > 0 && u+n > limit {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			for p := b.peak.Load(); u+n > p; p = b.peak.Load() {
				if b.peak.CompareAndSwap(p, u+n) {
					break
				}
			}
			bufferedBytes.Set(float64(u + n))
			return true
		}
	}
}

// give returns n reserved bytes.
func (b *bufferBudget) give(n int64) {
	bufferedBytes.Set(float64(b.used.Add(-n)))
}

// readBody reads the request's body (at most MaxBody bytes) into memory reserved from the receiver's
// buffer budget before it is allocated: the declared length at once, or a body of unknown length in
// doubling chunks (while one grows it holds its old and its new buffer: up to 1.5 times MaxBody). It answers 413 for a body over MaxBody (a declared one before reading anything) and 503
// with Retry-After when the budget cannot take it. release returns the reservation; it may be called more
// than once.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) (body []byte, release func(), herr *httpError) {
	var reserved int64
	release = func() {
		s.buffers.give(reserved)
		reserved = 0
	}
	if r.ContentLength > s.MaxBody {
		return nil, release, fail(http.StatusRequestEntityTooLarge, "body larger than %d bytes", s.MaxBody)
	}
	// A declared length is read with one byte to spare, to see its end; net/http never returns more.
	size := r.ContentLength + 1
	if r.ContentLength < 0 {
		size = min(firstChunk, s.MaxBody)
	}
	full := unavailable("the receiver is buffering as many request bodies as it may (--receiver-max-buffer), retry later")
	if !s.buffers.take(size, s.MaxBuffer) {
		requestsShed.Inc()
		return nil, release, full
	}
	reserved = size
	buf := make([]byte, 0, size)
	in := http.MaxBytesReader(w, r.Body, s.MaxBody)
	var probe [1]byte
	for {
		into, probing := buf[len(buf):cap(buf)], false
		switch {
		case len(into) == 0 && int64(len(buf)) >= s.MaxBody:
			into, probing = probe[:], true // full at the bound: one more byte says whether the body ends here
		case len(into) == 0:
			next := min(2*int64(cap(buf)), s.MaxBody)
			if !s.buffers.take(next, s.MaxBuffer) {
				requestsShed.Inc()
				release()
				return nil, release, full
			}
			grown := make([]byte, len(buf), next)
			copy(grown, buf)
			s.buffers.give(int64(cap(buf)))
			buf, reserved = grown, next
			into = buf[len(buf):cap(buf)]
		}
		n, err := in.Read(into)
		if probing && n > 0 {
			err = &http.MaxBytesError{Limit: s.MaxBody}
		} else {
			buf = buf[:len(buf)+n]
		}
		switch {
		case err == io.EOF:
			return buf, release, nil
		case err != nil:
			release()
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				return nil, release, fail(http.StatusRequestEntityTooLarge, "body larger than %d bytes", s.MaxBody)
			}
			return nil, release, fail(http.StatusBadRequest, "reading body: %v", err)
		}
	}
}
