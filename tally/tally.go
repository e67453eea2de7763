// Package tally keeps a Mailbox's lifetime counters, its rolling window of sends and bounces, and the
// bounded set of recent event ids used to drop duplicates. Everything here is a pure function of a
// MailboxStatus, so the receiver and the reconcilers compute the window the same way.
package tally

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
)

const (
	// MaxWindow is the largest rolling window kept, in sends (the schema's withinSends maximum).
	MaxWindow = 1000
	// MaxBounceMarks is the most bounce marks kept (the schema's bounces maximum): a window never needs
	// more to reach a threshold.
	MaxBounceMarks = 20
	// MaxEventIDs is how many recent event ids are remembered per mailbox for de-duplication: 2 hours at
	// 100 events an hour, and some room.
	MaxEventIDs = 210
	// digestSize is the bytes kept of each event id's SHA-256: with MaxEventIDs of them, a new event is
	// mistaken for a duplicate with a probability of about 2e-10.
	digestSize = 5
)

// Kind is what an event says happened.
type Kind int

const (
	// Send is one email sent from the mailbox.
	Send Kind = iota + 1
	// Bounce is one email of the mailbox bounced.
	Bounce
)

// Event is one webhook event, reduced to what the tally needs.
type Event struct {
	// ID identifies the event for de-duplication (a digest, never a lead address).
	ID string
	// Kind is Send or Bounce.
	Kind Kind
	// Soft marks a temporary bounce.
	Soft bool
	// At is when the event was received.
	At time.Time
}

// Apply records ev in st and reports whether it was new; a duplicate (its ID already recorded) leaves
// st unchanged. Soft bounces are counted toward the window only when countSoft is true.
func Apply(st *bgv1.MailboxStatus, ev Event, countSoft bool) bool {
	if ev.ID != "" {
		recent := recentDigests(&st.Ledger)
		d := digestOf(ev.ID)
		for i := 0; i+digestSize <= len(recent); i += digestSize {
			if string(recent[i:i+digestSize]) == string(d[:]) {
				return false
			}
		}
		recent = append(recent, d[:]...)
		if over := len(recent) - MaxEventIDs*digestSize; over > 0 {
			recent = recent[over:]
		}
		st.Ledger.Recent = base64.StdEncoding.EncodeToString(recent)
	}
	switch ev.Kind {
	case Send:
		st.Sent++
		prune(st)
	case Bounce:
		if ev.Soft {
			st.SoftBounced++
			if !countSoft {
				break
			}
		}
		st.Bounced++
		st.Ledger.BounceMarks = appendBounded(st.Ledger.BounceMarks, st.Sent, MaxBounceMarks)
	}
	if !ev.At.IsZero() && (st.LastEventAt == nil || ev.At.After(st.LastEventAt.Time)) {
		t := metav1.NewTime(ev.At)
		st.LastEventAt = &t
	}
	return true
}

// digestOf is the part of an event id's SHA-256 the ledger keeps.
func digestOf(id string) [digestSize]byte {
	sum := sha256.Sum256([]byte(id))
	return [digestSize]byte(sum[:digestSize])
}

// recentDigests decodes the ledger's recent digests, moving in the ids of the former form (eventIDs), so
// that a Mailbox written by an earlier version keeps recognising its duplicates; it clears that form.
func recentDigests(l *bgv1.Ledger) []byte {
	recent, err := base64.StdEncoding.DecodeString(l.Recent)
	if err != nil || len(recent)%digestSize != 0 {
		recent = nil // unreadable: start afresh rather than refuse events
	}
	if len(l.EventIDs) > 0 {
		var old []byte
		for _, id := range l.EventIDs {
			d := digestOf(id)
			old = append(old, d[:]...)
		}
		recent = append(old, recent...)
		if over := len(recent) - MaxEventIDs*digestSize; over > 0 {
			recent = recent[over:]
		}
		l.EventIDs = nil
		l.Recent = base64.StdEncoding.EncodeToString(recent)
	}
	return recent
}

// RecentEvents reports how many event ids the ledger remembers.
func RecentEvents(l *bgv1.Ledger) int {
	return len(recentDigests(l.DeepCopy())) / digestSize
}

// BouncesWithin returns the counted bounces received after the n-th most recent send of the current
// window (all of the window's bounces while it has fewer than n sends).
func BouncesWithin(st *bgv1.MailboxStatus, n int32) int32 {
	cutoff := st.Sent - int64(n) // a mark m counts when the bounce came after send number cutoff+1, i.e. m > cutoff
	var count int32
	for i := len(st.Ledger.BounceMarks) - 1; i >= 0 && st.Ledger.BounceMarks[i] > cutoff; i-- {
		count++
	}
	return count
}

// SendsWithin returns the sends of the current window, at most n.
func SendsWithin(st *bgv1.MailboxStatus, n int32) int32 {
	return int32(min(st.Sent-st.Ledger.WindowStartSent, int64(n)))
}

// Refresh sets the displayed window fields from the ledger for a pause window of n sends.
func Refresh(st *bgv1.MailboxStatus, n int32) {
	st.WindowSends = SendsWithin(st, n)
	st.WindowBounces = BouncesWithin(st, n)
	st.Window = fmt.Sprintf("%d/%d", st.WindowBounces, n)
}

// StartWindow begins a fresh rolling window: earlier bounces no longer count. Lifetime counters stay.
func StartWindow(st *bgv1.MailboxStatus) {
	st.Ledger.WindowStartSent = st.Sent
	st.Ledger.BounceMarks = nil
}

// prune drops bounce marks that can no longer fall within any window.
func prune(st *bgv1.MailboxStatus) {
	marks := st.Ledger.BounceMarks
	i := 0
	for i < len(marks) && marks[i] <= st.Sent-MaxWindow {
		i++
	}
	if i > 0 {
		st.Ledger.BounceMarks = slices.Clone(marks[i:])
	}
}

// appendBounded appends v and keeps only the newest max entries.
func appendBounded[T any](s []T, v T, max int) []T {
	s = append(s, v)
	if len(s) > max {
		s = slices.Clone(s[len(s)-max:])
	}
	return s
}

// StripRecent removes the de-duplication memory (the recent event digests, in either form) from a copy of
// a status: what the manager's cache keeps of it. Only the receiver reads that memory, from the API
// server, when it writes; a copy without it must never be the base of a write of events.
func StripRecent(st *bgv1.MailboxStatus) {
	st.Ledger.Recent = ""
	st.Ledger.EventIDs = nil
}
