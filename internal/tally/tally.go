// Package tally keeps a Mailbox's lifetime counters, its rolling window of sends and bounces, and the
// bounded set of recent event ids used to drop duplicates. Everything here is a pure function of a
// MailboxStatus, so the receiver and the reconcilers compute the window the same way.
package tally

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
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
	// MaxEventIDs is how many recent event ids are remembered per mailbox for de-duplication: 200 events
	// known by one id (2 hours at 100 events an hour), 100 known by two (an event's fingerprint and its
	// request id). More would not keep a Mailbox under 4 KiB.
	MaxEventIDs = 200
	// digestChars is the length of each id's digest in the ledger: 32 bits of its SHA-256 in five
	// characters of a base-85 alphabet. With MaxEventIDs of them a new event is mistaken for a duplicate
	// with a probability of at most 200/2^32 (one event in 21 million), and the ledger stays small enough
	// for a Mailbox to keep under 4 KiB of JSON with its history.
	digestChars = 5
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
	// AltID is a second id the event is known by ("" when none): the event is a duplicate when either
	// id was recorded before, and both are recorded.
	AltID string
	// Kind is Send or Bounce.
	Kind Kind
	// Soft marks a temporary bounce.
	Soft bool
	// At is when the event was received.
	At time.Time
}

// Apply records ev in st and reports whether it was new; a duplicate (its ID or its AltID already
// recorded) leaves st unchanged. Soft bounces are counted toward the window only when countSoft is true.
func Apply(st *bgv1.MailboxStatus, ev Event, countSoft bool) bool {
	if ev.ID != "" || ev.AltID != "" {
		seen := seenDigests(&st.Ledger)
		var add string
		for _, id := range []string{ev.ID, ev.AltID} {
			if id == "" {
				continue
			}
			d := digestOf(id)
			if recorded(seen, d) {
				return false
			}
			if add != d {
				add += d
			}
		}
		st.Ledger.Seen = keepLast(seen + add)
	}
	switch ev.Kind {
	case Send:
		st.Sent++
		prune(st)
		countSend(&st.Ledger, ev.At)
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

// recorded reports whether the digest d is one of seen's.
func recorded(seen, d string) bool {
	for i := 0; i+digestChars <= len(seen); i += digestChars {
		if seen[i:i+digestChars] == d {
			return true
		}
	}
	return false
}

// digestOf is the ledger's digest of an event id.
func digestOf(id string) string {
	sum := sha256.Sum256([]byte(id))
	return digest32(binary.BigEndian.Uint32(sum[:]))
}

// digestAlphabet is 85 printable characters that JSON carries as they are (no quote, backslash, or the
// <, > and & that encoders escape).
const digestAlphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?$#%@()[]{}|~_"

// digest32 writes v as five base-85 characters.
func digest32(v uint32) string {
	var out [digestChars]byte
	for i := digestChars - 1; i >= 0; i-- {
		out[i] = digestAlphabet[v%85]
		v /= 85
	}
	return string(out[:])
}

// keepLast trims a run of digests to the MaxEventIDs most recent.
func keepLast(seen string) string {
	if over := len(seen) - MaxEventIDs*digestChars; over > 0 {
		return seen[over:]
	}
	return seen
}

// seenDigests returns the ledger's recent digests, oldest first, moving in those of the former forms
// (recent: 40-bit digests in base64; eventIDs: whole ids) so that a Mailbox written by an earlier version
// keeps recognising its duplicates; it clears those forms. A former digest begins with the same 32 bits
// of the same SHA-256, so nothing is lost in the move.
func seenDigests(l *bgv1.Ledger) string {
	seen := l.Seen
	if len(seen)%digestChars != 0 {
		seen = "" // unreadable: start afresh rather than refuse events
	}
	if l.Recent == "" && len(l.EventIDs) == 0 {
		return seen
	}
	var old strings.Builder
	for _, id := range l.EventIDs {
		old.WriteString(digestOf(id))
	}
	if recent, err := base64.StdEncoding.DecodeString(l.Recent); err == nil && len(recent)%5 == 0 {
		for i := 0; i < len(recent); i += 5 {
			old.WriteString(digest32(binary.BigEndian.Uint32(recent[i:])))
		}
	}
	seen = keepLast(old.String() + seen)
	l.Seen, l.Recent, l.EventIDs = seen, "", nil
	return seen
}

// RecentEvents reports how many event ids the ledger remembers.
func RecentEvents(l *bgv1.Ledger) int {
	return len(seenDigests(l.DeepCopy())) / digestChars
}

// countSend counts a send in the ledger's sends of its day (UTC) and of the day before: what the
// account sync compares with Smartlead's daily_sent_count. A send without a time counts for the last day seen.
func countSend(l *bgv1.Ledger, at time.Time) {
	day := l.SendDay
	if !at.IsZero() {
		day = DayOf(at)
	}
	switch {
	case day == l.SendDay:
	case day == l.SendDay+1:
		l.SendsYesterday, l.SendsToday = l.SendsToday, 0
	case day > l.SendDay:
		l.SendsYesterday, l.SendsToday = 0, 0
	default: // a late event of an earlier day
		if day == l.SendDay-1 {
			l.SendsYesterday++
		}
		return
	}
	l.SendDay = day
	l.SendsToday++
}

// DayOf is the UTC day of t, in days since 1970-01-01.
func DayOf(t time.Time) int32 {
	return int32(t.UTC().Unix() / 86400)
}

// SendsSinceYesterday returns the sends recorded since the start of the day before now's (UTC): at least
// the last 24 hours, so at least a Smartlead "today" in any time zone.
func SendsSinceYesterday(l *bgv1.Ledger, now time.Time) int32 {
	switch d := DayOf(now) - l.SendDay; {
	case d <= 0: // a clock behind the events' counts all it knows
		return l.SendsToday + l.SendsYesterday
	case d == 1:
		return l.SendsToday
	default:
		return 0
	}
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

// appendBounded appends v and keeps only the newest limit entries.
func appendBounded[T any](s []T, v T, limit int) []T {
	s = append(s, v)
	if len(s) > limit {
		s = slices.Clone(s[len(s)-limit:])
	}
	return s
}

// StripRecent removes the de-duplication memory (the recent event digests, in either form) from a copy of
// a status: what the manager's cache keeps of it. Only the receiver reads that memory, from the API
// server, when it writes; a copy without it must never be the base of a write of events.
func StripRecent(st *bgv1.MailboxStatus) {
	st.Ledger.Seen, st.Ledger.Recent = "", ""
	st.Ledger.EventIDs = nil
}
