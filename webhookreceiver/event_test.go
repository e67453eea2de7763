package webhookreceiver

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bounceguard/bounceguard/internal/tally"
)

// Real Smartlead shapes (values invented), used by the table tests and as fuzz seeds.
var (
	flatSent = `{"webhook_id":"12","webhook_name":"bg","stats_id":"e2a4","event_type":"EMAIL_SENT",
"event_timestamp":"2026-11-25T10:00:00.000Z","from_email":"Alice@Acme.com","to_email":"lead@example.org","to_name":"Lead",
"subject":"Hi","campaign_id":111,"campaign_name":"Q4","campaign_status":"ACTIVE","sequence_number":1,
"sent_message":{"message_id":"<m1@acme.com>","html":"<p>Hi</p>","text":"Hi","time":"2026-11-25T10:00:00Z"},
"client_id":null,"app_url":"https://app.smartlead.ai/x","secret_key":"","metadata":{"webhook_created_at":"2026-01-01"}}`
	flatBounce = `{"event_type":"EMAIL_BOUNCE","from_email":"alice@acme.com","to_email":"lead@example.org",
"campaign_id":"111","sequence_number":"2","message_id":"<m2@acme.com>","event_timestamp":"2026-11-25T10:05:00Z",
"bounce_message":"550 5.1.1 The email account that you tried to reach does not exist"}`
	flatSoft = `{"event_type":"EMAIL_BOUNCE","from_email":"alice@acme.com","to_email":"lead@example.org",
"message_id":"<m3@acme.com>","bounce_message":{"code":452,"text":"4.2.2 Mailbox full, try again later"}}`
	nestedSent = `{"event":"EMAIL_SENT","timestamp":"2026-11-25T10:30:00Z","campaign_id":123,"campaign_name":"Cold",
"lead_id":789,"email_account_id":456,"lead":{"email":"jane@example.org","first_name":"Jane"},
"sequence_number":1,"email":{"subject":"Quick question","message_id":"abc123@smartlead.ai"}}`
	nestedBounce = `{"event":"email_bounced","timestamp":"2026-11-25T10:31:00Z","campaign_id":123,
"email_account_id":"456","from_email":"bob@acme.com","lead":{"email":"jane@example.org"},"email":{"message_id":"abc124@smartlead.ai"}}`
	flatReply = `{"event_type":"EMAIL_REPLY","from_email":"alice@acme.com","to_email":"lead@example.org"}`
	// apiBounce is the shape of webhooks created through Smartlead's API: the sender is email_account.
	apiBounce = `{"event_type":"BOUNCED","email_account":"Carol@Acme.com","lead_email":"lead@example.org",
"campaign_id":4242,"message":"550 5.1.1 <lead@example.org>: Recipient address rejected","timestamp":"2026-11-25T10:40:00Z"}`
	apiSent = `{"event_type":"EMAIL_SENT","email_account":"carol@acme.com","lead_email":"lead@example.org",
"campaign_id":4242,"message":"sent","timestamp":1795603200}`
)

func TestParseEvent(t *testing.T) {
	cases := []struct {
		name    string
		body    string
		kind    tally.Kind
		soft    bool
		sender  string
		account int64
		err     error
	}{
		{"flat send", flatSent, tally.Send, false, "alice@acme.com", 0, nil},
		{"flat hard bounce", flatBounce, tally.Bounce, false, "alice@acme.com", 0, nil},
		{"flat soft bounce by SMTP text", flatSoft, tally.Bounce, true, "alice@acme.com", 0, nil},
		{"nested send by account id", nestedSent, tally.Send, false, "", 456, nil},
		{"nested bounce, lower case, string id", nestedBounce, tally.Bounce, false, "bob@acme.com", 456, nil},
		{"reply is ignored", flatReply, 0, false, "", 0, nil},
		{"API-created shape bounce names the sender email_account", apiBounce, tally.Bounce, false, "carol@acme.com", 0, nil},
		{"API-created shape send", apiSent, tally.Send, false, "carol@acme.com", 0, nil},
		{"email_account as an object", `{"event_type":"SENT","email_account":{"id":77,"email":"x@acme.com"}}`, tally.Send, false, "x@acme.com", 77, nil},
		{"email_account as an id", `{"event_type":"SENT","email_account":"77"}`, tally.Send, false, "", 77, nil},
		{"numeric timestamp does not make the body malformed", `{"event":"SENT","email_account_id":5,"timestamp":1795603200000}`, tally.Send, false, "", 5, nil},
		{"unknown event ignored without sender", `{"event_type":"EMAIL_OPEN"}`, 0, false, "", 0, nil},
		{"not JSON", `{"event_type":`, 0, false, "", 0, ErrMalformed},
		{"JSON array", `[1,2]`, 0, false, "", 0, ErrMalformed},
		{"two objects", `{"event":"SENT","from_email":"a@b.co"} {}`, 0, false, "", 0, ErrMalformed},
		{"empty body", ``, 0, false, "", 0, ErrMalformed},
		{"missing event", `{"from_email":"a@acme.com"}`, 0, false, "", 0, ErrNoEvent},
		{"missing sender", `{"event_type":"EMAIL_SENT","to_email":"x@y.com"}`, 0, false, "", 0, ErrNoSender},
		{"zero account id is no sender", `{"event":"SENT","email_account_id":0}`, 0, false, "", 0, ErrNoSender},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, err := ParseEvent([]byte(c.body))
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("err = %v, want %v", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if ev.Kind != c.kind || ev.Soft != c.soft {
				t.Fatalf("kind/soft = %v/%v, want %v/%v", ev.Kind, ev.Soft, c.kind, c.soft)
			}
			if c.kind != 0 && (ev.Sender != c.sender || ev.AccountID != c.account) {
				t.Fatalf("sender/account = %q/%d, want %q/%d", ev.Sender, ev.AccountID, c.sender, c.account)
			}
		})
	}
}

func TestEventNames(t *testing.T) {
	for name, kind := range map[string]tally.Kind{
		"EMAIL_SENT": tally.Send, "FIRST_EMAIL_SENT": tally.Send, "SENT": tally.Send, "email_sent": tally.Send,
		"EMAIL_BOUNCE": tally.Bounce, "EMAIL_BOUNCED": tally.Bounce, "BOUNCED": tally.Bounce, "email_bounce": tally.Bounce,
		"hard_bounce": tally.Bounce, "soft_bounce": tally.Bounce, "delivery_failure": tally.Bounce, "Email_Sent": tally.Send,
		"EMAIL_OPEN": 0, "EMAIL_REPLY": 0, "EMAIL_LINK_CLICK": 0, "LEAD_UNSUBSCRIBED": 0,
	} {
		ev, err := ParseEvent([]byte(`{"event_type":"` + name + `","from_email":"a@acme.com"}`))
		if err != nil || ev.Kind != kind {
			t.Errorf("%s: kind %v err %v, want %v", name, ev.Kind, err, kind)
		}
		if name == "soft_bounce" && !ev.Soft {
			t.Errorf("soft_bounce not soft")
		}
	}
}

func TestEventTime(t *testing.T) {
	at := time.Date(2026, 11, 25, 10, 40, 0, 0, time.UTC)
	cases := []struct {
		name, body string
		want       time.Time
	}{
		{"RFC 3339 event_timestamp", `{"event_type":"EMAIL_BOUNCE","from_email":"a@acme.com","event_timestamp":"2026-11-25T10:40:00.000Z","time_sent":"2026-11-20T00:00:00Z"}`, at},
		{"API shape timestamp", apiBounce, at},
		{"Unix seconds", `{"event":"SENT","email_account_id":5,"timestamp":1795603200}`, at},
		{"Unix milliseconds as a string", `{"event":"SENT","email_account_id":5,"timestamp":"1795603200000"}`, at},
		{"zone-less is UTC", `{"event":"SENT","email_account_id":5,"timestamp":"2026-11-25 10:40:00"}`, at},
		{"a send's time_sent", `{"event_type":"EMAIL_SENT","from_email":"a@acme.com","time_sent":"2026-11-25T10:40:00Z"}`, at},
		{"a bounce's time_sent is the send's, not the bounce's", `{"event_type":"EMAIL_BOUNCE","from_email":"a@acme.com","time_sent":"2026-11-25T10:40:00Z"}`, time.Time{}},
		{"a bounce's bounce_message.time", `{"event_type":"EMAIL_BOUNCE","from_email":"a@acme.com","bounce_message":{"time":"2026-11-25T10:40:00Z"}}`, at},
		{"unparseable is no timestamp", `{"event":"SENT","email_account_id":5,"timestamp":"yesterday"}`, time.Time{}},
		{"none", `{"event":"SENT","email_account_id":5}`, time.Time{}},
	}
	for _, c := range cases {
		ev, err := ParseEvent([]byte(c.body))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !ev.At.Equal(c.want) {
			t.Errorf("%s: at = %v, want %v", c.name, ev.At, c.want)
		}
	}
}

func TestFingerprintIdentifiesAnEvent(t *testing.T) {
	a, _ := ParseEvent([]byte(flatBounce))
	b, _ := ParseEvent([]byte(flatBounce))
	if a.Fingerprint != b.Fingerprint {
		t.Fatal("the same payload gave two fingerprints")
	}
	c, _ := ParseEvent([]byte(strings.Replace(flatBounce, "<m2@acme.com>", "<m9@acme.com>", 1)))
	if a.Fingerprint == c.Fingerprint {
		t.Fatal("different messages share a fingerprint")
	}
	f1, r1 := EventIDs("req-1", a)
	f2, r2 := EventIDs("req-2", a)
	f0, r0 := EventIDs("", a)
	if strings.Contains(a.Fingerprint, "lead") || f1 != a.Fingerprint || f2 != a.Fingerprint || f0 != a.Fingerprint ||
		r1 == r2 || r1 == "" || r0 != "" {
		t.Fatal("event ids do not follow the rule: the fingerprint always, the request id's digest when there is one")
	}
}

// The fingerprint is always one of an event's de-duplication ids, so two legitimate events must never
// share one, and the same event delivered again (a retry, a replay, the same event to a second webhook,
// the secret key rotated in between) must.
func TestFingerprintTellsEventsApart(t *testing.T) {
	const ts = `"event_timestamp":"2026-11-25T10:05:00Z"`
	base := `{"event_type":"EMAIL_BOUNCE","from_email":"alice@acme.com","to_email":"lead@example.org","campaign_id":31337,` +
		`"sequence_number":2,"stats_id":"6a0b4e2c-1d3f-4e5a-9b8c-7d6e5f4a3b2c","message_id":"<CAF=1x9@mail.gmail.com>",` + ts +
		`,"webhook_id":12,"secret_key":"whsec-a","bounce_message":"550 5.1.1 User unknown"}`
	distinct := map[string]string{
		"another message id":            strings.Replace(base, "<CAF=1x9@", "<CAF=1x10@", 1),
		"another lead":                  strings.Replace(base, "lead@example.org", "lead2@example.org", 1),
		"the next sequence step":        strings.Replace(base, `"sequence_number":2`, `"sequence_number":3`, 1),
		"another campaign":              strings.Replace(base, "31337", "31338", 1),
		"another stats id":              strings.Replace(base, "6a0b4e2c", "6a0b4e2d", 1),
		"a second later":                strings.Replace(base, "10:05:00Z", "10:05:01Z", 1),
		"another sender":                strings.Replace(base, "alice@acme.com", "bob@acme.com", 1),
		"the send of the same mail":     strings.Replace(base, "EMAIL_BOUNCE", "EMAIL_SENT", 1),
		"nested shape, another message": strings.Replace(nestedBounce, "abc124@", "abc125@", 1),
		"API shape, another time":       strings.Replace(apiBounce, "10:40:00Z", "10:41:00Z", 1),
	}
	same := map[string]string{
		"the same event to a second webhook": strings.Replace(base, `"webhook_id":12`, `"webhook_id":13`, 1),
		"the secret key rotated":             strings.Replace(base, "whsec-a", "whsec-b", 1),
		"fields in another order":            strings.Replace(strings.Replace(base, `,"webhook_id":12`, "", 1), "{", `{"webhook_id":12,`, 1),
		"the bounce text reworded":           strings.Replace(base, "User unknown", "No such user here", 1),
	}
	fp := func(body string) string {
		ev, err := ParseEvent([]byte(body))
		if err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		return ev.Fingerprint
	}
	for name, body := range distinct {
		other := base
		switch {
		case strings.HasPrefix(name, "nested"):
			other = nestedBounce
		case strings.HasPrefix(name, "API"):
			other = apiBounce
		}
		if fp(body) == fp(other) {
			t.Errorf("%s: two distinct events share a fingerprint", name)
		}
	}
	for name, body := range same {
		if fp(body) != fp(base) {
			t.Errorf("%s: the same event got another fingerprint", name)
		}
	}
}

// Smartlead puts the webhook's secret key in the payload (top-level secret_key). Only a non-empty string
// there is a credential, in every payload shape; anything else is none.
func TestPayloadSecretKey(t *testing.T) {
	withKey := func(shape, key string) string { return strings.Replace(shape, "{", `{"secret_key":`+key+`,`, 1) }
	cases := []struct {
		name, body, want string
	}{
		{"flat shape", withKey(flatBounce, `"whsec-7f3a9c"`), "whsec-7f3a9c"},
		{"flat shape, empty (no secret configured in Smartlead)", flatSent, ""},
		{"API-created shape", withKey(apiBounce, `"whsec-7f3a9c"`), "whsec-7f3a9c"},
		{"nested shape", withKey(nestedBounce, `"whsec-7f3a9c"`), "whsec-7f3a9c"},
		{"surrounding spaces", withKey(flatBounce, `" whsec-7f3a9c\n"`), "whsec-7f3a9c"},
		{"a number", withKey(flatBounce, `12345`), ""},
		{"null", withKey(flatBounce, `null`), ""},
		{"an object", withKey(flatBounce, `{"value":"whsec-7f3a9c"}`), ""},
		{"an array", withKey(flatBounce, `["whsec-7f3a9c"]`), ""},
		{"only inside the lead", `{"event":"EMAIL_BOUNCE","email_account_id":4,"lead":{"secret_key":"whsec-7f3a9c"}}`, ""},
		{"malformed JSON", `{"secret_key":"whsec-7f3a9c",`, ""},
		{"not an object", `"whsec-7f3a9c"`, ""},
		{"the last of two wins, as in every JSON field", `{"secret_key":"a","secret_key":"whsec-7f3a9c"}`, "whsec-7f3a9c"},
	}
	for _, c := range cases {
		if got := PayloadSecretKey([]byte(c.body)); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
		if ev, err := ParseEvent([]byte(c.body)); err == nil && c.want != "" && strings.Contains(fmt.Sprintf("%+v", ev), c.want) {
			t.Errorf("%s: the parsed event carries the secret key", c.name)
		}
	}
}

func TestVerifySignature(t *testing.T) {
	body := []byte(flatSent)
	good := Sign(body, "s3cret")
	cases := []struct {
		name, header, secrets string
		ok                    bool
	}{
		{"valid", good, "s3cret", true},
		{"one of several secrets (rotation)", good, "old\ns3cret\n", true},
		{"wrong secret", good, "other", false},
		{"missing", "", "s3cret", false},
		{"no prefix", strings.TrimPrefix(good, "sha256="), "s3cret", false},
		{"other hash named", "sha1=" + strings.TrimPrefix(good, "sha256="), "s3cret", false},
		{"not hex", "sha256=zz", "s3cret", false},
		{"truncated", good[:len(good)-2], "s3cret", false},
		{"empty secrets", good, "\n\n", false},
	}
	for _, c := range cases {
		if got := VerifySignature(body, c.header, c.secrets); got != c.ok {
			t.Errorf("%s: got %v, want %v", c.name, got, c.ok)
		}
	}
	if VerifySignature(append(body, ' '), good, "s3cret") {
		t.Error("a changed body verified")
	}
}
