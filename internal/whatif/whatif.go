// Package whatif replays recorded webhook events (the lines the manager writes with --log-events)
// through a policy's rules, with the same tally and state machines the manager runs, and reports which
// mailboxes and domains it would have warned or paused, and when. It is the engine of
// `kubectl bounceguard whatif`: a change of thresholds can show its effect on real traffic before it
// is merged.
package whatif

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/eventlog"
	"github.com/bounceguard/bounceguard/internal/protection"
	"github.com/bounceguard/bounceguard/internal/tally"
)

// Event is one recorded event, as a --log-events line gives it.
type Event struct {
	// Sender is the sending mailbox's address; Domain its domain.
	Sender string
	Domain string
	// Type is send, bounce or soft_bounce.
	Type string
	// At is the event's own time when it had one, else when it was received.
	At time.Time
}

// logLine is the part of a --log-events line (zap's JSON encoder) that is read.
type logLine struct {
	Logger    string `json:"logger"`
	Msg       string `json:"msg"`
	Sender    string `json:"sender"`
	Domain    string `json:"domain"`
	Type      string `json:"type"`
	At        string `json:"at"`
	EventTime string `json:"eventTime"`
}

// ParseLog reads --log-events lines. Other lines (the manager's other logs, `kubectl logs` prefixes
// without JSON) are skipped and counted; a recorded-event line that cannot be read is an error naming its
// line number.
func ParseLog(r io.Reader) (events []Event, skipped int, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(text, '{'); i > 0 {
			text = text[i:] // e.g. a "pod/name " prefix from kubectl logs --prefix
		}
		var l logLine
		if !strings.HasPrefix(text, "{") || json.Unmarshal([]byte(text), &l) != nil || l.Msg != eventlog.Message ||
			(l.Logger != eventlog.Name && !strings.HasSuffix(l.Logger, "."+eventlog.Name)) {
			skipped++
			continue
		}
		at := l.EventTime
		if at == "" {
			at = l.At
		}
		t, perr := time.Parse(time.RFC3339Nano, at)
		if perr != nil || l.Sender == "" || !slices.Contains([]string{"send", "bounce", "soft_bounce"}, l.Type) {
			return nil, skipped, fmt.Errorf("line %d: an event line without a valid sender, type or time", n)
		}
		domain := l.Domain
		if domain == "" {
			domain = l.Sender[strings.LastIndexByte(l.Sender, '@')+1:]
		}
		events = append(events, Event{Sender: l.Sender, Domain: domain, Type: l.Type, At: t})
	}
	if err := sc.Err(); err != nil {
		return nil, skipped, fmt.Errorf("reading events: %w", err)
	}
	return events, skipped, nil
}

// Finding is a transition the policy would have made.
type Finding struct {
	At       time.Time   `json:"at"`
	Kind     string      `json:"kind"` // Mailbox or Domain
	Name     string      `json:"name"` // the sending address, or the domain
	From     bgv1.Health `json:"from"`
	To       bgv1.Health `json:"to"`
	Reason   string      `json:"reason"`
	Evidence string      `json:"evidence"`
}

// Result is what a replay found.
type Result struct {
	Events    int       `json:"events"`
	Mailboxes int       `json:"mailboxes"`
	Domains   int       `json:"domains"`
	Findings  []Finding `json:"findings"`
	// Final is each mailbox's health after the last event (the healthy ones are left out).
	Final map[string]bgv1.Health `json:"final,omitempty"`
}

type domainState struct {
	status  bgv1.DomainStatus
	members []string
}

// Replay runs events, in time order, through policy's rules: every mailbox starts Healthy with an empty
// window. Cooldowns end at the time of the mailbox's next event (a replay has no clock of its own).
func Replay(policy *bgv1.ProtectionPolicy, events []Event) Result {
	rules := protection.RulesFor(policy)
	events = slices.Clone(events)
	slices.SortStableFunc(events, func(a, b Event) int { return a.At.Compare(b.At) })
	mailboxes := map[string]*bgv1.MailboxStatus{}
	domainOf := map[string]string{}
	domains := map[string]*domainState{}
	res := Result{Events: len(events), Final: map[string]bgv1.Health{}}

	stepDomain := func(name string, now time.Time) {
		d := domains[name]
		var unhealthy int32
		for _, m := range d.members {
			if protection.Unhealthy(mailboxes[m].Health) {
				unhealthy++
			}
		}
		d.status.Mailboxes, d.status.UnhealthyMailboxes = int32(len(d.members)), unhealthy
		d.status.UnhealthyPercent = protection.Percent(unhealthy, d.status.Mailboxes)
		dec := protection.DecideDomain(rules, &d.status, d.status.Mailboxes, unhealthy, "", now)
		dec.Apply(&d.status)
		if t := dec.Transition; t != nil {
			res.Findings = append(res.Findings, Finding{At: now, Kind: "Domain", Name: name, From: t.From, To: t.To,
				Reason: t.Reason, Evidence: t.Message})
		}
	}
	stepMailbox := func(sender string, now time.Time) {
		st := mailboxes[sender]
		for range 3 { // a cooldown that ended may take the mailbox through more than one state
			dec := protection.DecideMailbox(rules, st, "", "", now)
			dec.Apply(st, rules.Pause.WithinSends)
			t := dec.Transition
			if t == nil {
				return
			}
			res.Findings = append(res.Findings, Finding{At: now, Kind: "Mailbox", Name: sender, From: t.From, To: t.To,
				Reason: t.Reason, Evidence: t.Message})
			stepDomain(domainOf[sender], now)
		}
	}

	for i, ev := range events {
		st, ok := mailboxes[ev.Sender]
		if !ok {
			st = &bgv1.MailboxStatus{Health: bgv1.HealthHealthy}
			tally.Refresh(st, rules.Pause.WithinSends)
			mailboxes[ev.Sender], domainOf[ev.Sender] = st, ev.Domain
			d := domains[ev.Domain]
			if d == nil {
				d = &domainState{status: bgv1.DomainStatus{Health: bgv1.HealthHealthy}}
				domains[ev.Domain] = d
			}
			d.members = append(d.members, ev.Sender)
		}
		stepMailbox(ev.Sender, ev.At) // a cooldown may have ended before this event
		te := tally.Event{ID: fmt.Sprintf("replay-%d", i), Kind: tally.Send, At: ev.At}
		if ev.Type != "send" {
			te.Kind, te.Soft = tally.Bounce, ev.Type == "soft_bounce"
		}
		tally.Apply(st, te, rules.CountSoftBounces)
		tally.Refresh(st, rules.Pause.WithinSends)
		stepMailbox(ev.Sender, ev.At)
	}
	res.Mailboxes, res.Domains = len(mailboxes), len(domains)
	for sender, st := range mailboxes {
		if st.Health != bgv1.HealthHealthy {
			res.Final[sender] = st.Health
		}
	}
	return res
}
