package whatif

import (
	"fmt"
	"strings"
	"testing"
	"time"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
)

var t0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

// line is a --log-events line as the manager's JSON logger writes it.
func line(sender, typ string, at time.Time) string {
	return fmt.Sprintf(`{"level":"info","ts":1764579600.1,"logger":"receiver.events","msg":"event recorded","namespace":"acme",`+
		`"mailbox":"x","policy":"default","sender":%q,"domain":%q,"type":%q,"at":%q,"lead":"lead:0a1b2c3d4e5f"}`,
		sender, sender[strings.IndexByte(sender, '@')+1:], typ, at.Format(time.RFC3339Nano))
}

// stream is sends sends then the given bounce types on sender, a minute apart from start.
func stream(sender string, start time.Time, sends int, bounces ...string) []string {
	var out []string
	for i := range sends {
		out = append(out, line(sender, "send", start.Add(time.Duration(i)*time.Minute)))
	}
	for i, b := range bounces {
		out = append(out, line(sender, b, start.Add(time.Duration(sends+i)*time.Minute)))
	}
	return out
}

func TestParseLog(t *testing.T) {
	input := strings.Join([]string{
		`{"level":"info","ts":1,"logger":"setup","msg":"starting the manager"}`,
		`2026-12-01T09:00:00Z INFO not json at all`,
		"pod/bounceguard-7c9 " + line("ann@acme.io", "send", t0),
		line("ann@acme.io", "bounce", t0.Add(time.Minute)),
		`{"level":"info","logger":"receiver.events","msg":"event recorded","sender":"bob@acme.io","type":"soft_bounce","at":"2026-12-01T09:02:00Z","eventTime":"2026-12-01T08:59:00Z"}`,
		``,
	}, "\n")
	events, skipped, err := ParseLog(strings.NewReader(input))
	if err != nil {
		t.Fatal(err)
	}
	if skipped != 2 || len(events) != 3 {
		t.Fatalf("%d events, %d skipped: %+v", len(events), skipped, events)
	}
	if e := events[2]; e.Sender != "bob@acme.io" || e.Domain != "acme.io" || e.Type != "soft_bounce" || !e.At.Equal(t0.Add(-time.Minute)) {
		t.Fatalf("the event's own time and the domain from the address: %+v", e)
	}
	_, _, err = ParseLog(strings.NewReader(line("ann@acme.io", "send", t0) + "\n" +
		`{"logger":"receiver.events","msg":"event recorded","sender":"ann@acme.io","type":"open","at":"2026-12-01T09:00:00Z"}`))
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("a broken event line: %v", err)
	}
}

func TestReplay(t *testing.T) {
	policy := func(tweak func(*bgv1.ProtectionPolicySpec)) *bgv1.ProtectionPolicy {
		p := &bgv1.ProtectionPolicy{}
		if tweak != nil {
			tweak(&p.Spec)
		}
		return p
	}
	hard5 := []string{"bounce", "bounce", "bounce", "bounce", "bounce"}
	for _, tc := range []struct {
		name   string
		policy *bgv1.ProtectionPolicy
		lines  []string
		want   []string // "Kind Name From->To Reason @minute"
	}{
		{"defaults: warned at the 3rd bounce, paused at the 5th; its 1-mailbox domain turns Warning (Paused needs 2)", policy(nil),
			stream("ann@acme.io", t0, 100, hard5...),
			[]string{"Mailbox ann@acme.io Healthy->Warning WarningThreshold @102", "Domain acme.io Healthy->Warning UnhealthyMailboxes @102",
				"Mailbox ann@acme.io Warning->Paused BounceThreshold @104"}},
		{"a stricter pause (3/100) pauses at the 3rd bounce", policy(func(s *bgv1.ProtectionPolicySpec) {
			s.Mailbox.Warning = bgv1.Threshold{Bounces: 2, WithinSends: 60}
			s.Mailbox.Pause = bgv1.Threshold{Bounces: 3, WithinSends: 100}
		}), stream("ann@acme.io", t0, 100, hard5...),
			[]string{"Mailbox ann@acme.io Healthy->Warning WarningThreshold @101", "Domain acme.io Healthy->Warning UnhealthyMailboxes @101",
				"Mailbox ann@acme.io Warning->Paused BounceThreshold @102"}},
		{"soft bounces are not counted by default", policy(nil),
			stream("ann@acme.io", t0, 100, "soft_bounce", "soft_bounce", "soft_bounce", "soft_bounce", "soft_bounce"), nil},
		{"bounces spread over many sends stay Healthy", policy(nil),
			append(append(stream("ann@acme.io", t0, 100, "bounce", "bounce"), stream("ann@acme.io", t0.Add(110*time.Minute), 100, "bounce", "bounce")...),
				stream("ann@acme.io", t0.Add(220*time.Minute), 100)...), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events, _, err := ParseLog(strings.NewReader(strings.Join(tc.lines, "\n")))
			if err != nil {
				t.Fatal(err)
			}
			res := Replay(tc.policy, events)
			var got []string
			for _, f := range res.Findings {
				got = append(got, fmt.Sprintf("%s %s %s->%s %s @%d", f.Kind, f.Name, f.From, f.To, f.Reason, int(f.At.Sub(t0).Minutes())))
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if res.Events != len(tc.lines) || res.Mailboxes != 1 {
				t.Fatalf("result %+v", res)
			}
		})
	}
}

// A pause's cooldown ends at the next event after it (a replay has no clock of its own), and a small
// domain with two unhealthy mailboxes pauses.
func TestReplayCooldownAndDomain(t *testing.T) {
	lines := stream("ann@acme.io", t0, 100, "bounce", "bounce", "bounce", "bounce", "bounce")
	lines = append(lines, stream("bob@acme.io", t0.Add(time.Hour), 100, "bounce", "bounce", "bounce")...)
	lines = append(lines, line("ann@acme.io", "send", t0.Add(5*time.Hour)))
	events, _, err := ParseLog(strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	res := Replay(&bgv1.ProtectionPolicy{}, events)
	var got []string
	for _, f := range res.Findings {
		got = append(got, f.Kind+" "+f.Name+" "+string(f.To))
	}
	want := []string{"Mailbox ann@acme.io Warning", "Domain acme.io Warning", "Mailbox ann@acme.io Paused",
		"Mailbox bob@acme.io Warning", "Domain acme.io Paused", "Mailbox ann@acme.io Recovering", "Domain acme.io Recovering"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("findings %v, want %v", got, want)
	}
	if res.Final["ann@acme.io"] != bgv1.HealthRecovering || res.Final["bob@acme.io"] != bgv1.HealthWarning ||
		res.Mailboxes != 2 || res.Domains != 1 {
		t.Fatalf("result %+v", res)
	}
}
