package webhookreceiver

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// bounceTexts are bounce descriptions as the big receivers and MTAs word them (addresses, IPs and queue
// ids invented, their shape kept: Gmail's gsmtp queue ids and Outlook's timestamps contain digit runs
// such as 412 and 550 on purpose). soft says whether a bounce with that text is temporary.
var bounceTexts = []struct {
	who, text string
	soft      bool
}{
	// Gmail
	{"gmail no such user", "550-5.1.1 The email account that you tried to reach does not exist. Please try\n550-5.1.1 double-checking the recipient's email address for typos or\n550-5.1.1 unnecessary spaces. For more information, go to\n550 5.1.1  https://support.google.com/mail/?p=NoSuchUser d75a77b69052e-4a5f0c1e4c1si412345qtb.412 - gsmtp", false},
	{"gmail disabled", "550-5.2.1 The email account that you tried to reach is disabled. Learn more at\n550 5.2.1  https://support.google.com/mail/?p=DisabledUser 6a1803df08f44-6fb0e2a4412si4211234d6.450 - gsmtp", false},
	{"gmail unauthenticated", "550-5.7.26 This mail is unauthenticated, which poses a security risk to the\n550-5.7.26 sender and Gmail users, and has been blocked. The sender must\n550-5.7.26 authenticate with at least one of SPF or DKIM. For this message,\n550-5.7.26 DKIM checks did not pass and SPF check for [acme.com] did not pass\n550-5.7.26 with ip: [209.85.220.41]. To best protect our users from spam, the\n550 5.7.26 message has been blocked. 41be03b00d2f7-b4a1c2d5e6fsi4213.421 - gsmtp", false},
	{"gmail spam block", "550-5.7.1 [209.85.220.41] Our system has detected that this message is\n550-5.7.1 likely unsolicited mail. To reduce the amount of spam sent to Gmail,\n550 5.7.1 this message has been blocked. 5b1f17b1804b1-42f4c7a1b2csi4521234f8f.452 - gsmtp", false},
	{"gmail over quota", "452-4.2.2 The recipient's inbox is out of storage space. Please direct the\n452-4.2.2 recipient to\n452 4.2.2  https://support.google.com/mail/?p=OverQuotaTemp 5b1f17b1804b1-42f4c7a1b2csi5501234f8f.550 - gsmtp", true},
	{"gmail rate limited", "421-4.7.0 [209.85.220.41      15] Our system has detected an unusual rate of\n421-4.7.0 unsolicited mail originating from your IP address. To protect our\n421-4.7.0 users from spam, mail sent from your IP address has been temporarily\n421 4.7.0 rate limited. a640c23a62f3a-ad52d5a1b55si5509876a12.550 - gsmtp", true},
	{"gmail receiving too fast", "450-4.2.1 The user you are trying to contact is receiving mail at a rate that\n450-4.2.1 prevents additional messages from being delivered. Please resend your\n450 4.2.1 message at a later time. 2adb3069b0e04-55f5b1a2c3dsi5501234e87.550 - gsmtp", true},
	// Outlook / Exchange Online
	{"exchange recipient not found", "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup", false},
	{"exchange returned", "Remote Server returned '550 5.1.1 RESOLVER.ADR.RecipNotFound; not found'", false},
	{"exchange access denied", "550 5.4.1 Recipient address rejected: Access denied. AS(201806281) [BN8NAM12FT047.eop-nam12.prod.protection.outlook.com 2026-11-25T10:05:00.412Z 08DDB3E1C2A4F7D1]", false},
	{"exchange IP blocked", "550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP. For more information please go to http://go.microsoft.com/fwlink/?LinkId=526653 AS(7230) [DB5EUR03FT012.eop-EUR03.prod.protection.outlook.com 2026-11-25T10:05:00.421Z 08DDB3E1C2A4F7D2]", false},
	{"exchange quota, permanent code", "554 5.2.2 mailbox full; STOREDRV.Deliver.Exception:QuotaExceededException.MapiExceptionShutoffQuotaExceeded; Failed to process message due to a permanent exception with message [BeginDiagnosticData]", false},
	{"exchange server busy", "451 4.7.500 Server busy. Please try again later from [40.107.22.55]. (S77719) [DB5EUR03FT012.eop-EUR03.prod.protection.outlook.com 2026-11-25T10:05:00.550Z]", true},
	{"exchange thread limit", "432 4.3.2 STOREDRV.Deliver; recipient thread limit exceeded", true},
	{"outlook.com mailbox unavailable", "550 5.5.0 Requested action not taken: mailbox unavailable (S2017062302). [AM4PEPF00027A5F.eurprd04.prod.outlook.com 2026-11-25T10:05:01.421Z 08DDC1A2B3C4D5E6]", false},
	{"outlook.com block list", "550 5.7.1 Unfortunately, messages from [52.100.0.1] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3140). You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors. [AM4PEPF00027A5F.eurprd04.prod.outlook.com 2026-11-25T10:05:01.452Z]", false},
	// Yahoo / AOL
	{"yahoo no account", "554 delivery error: dd This user doesn't have a yahoo.com account (someone@yahoo.com) [0] - mta4212.mail.bf1.yahoo.com", false},
	{"yahoo deferred", "421 4.7.0 [TSS04] Messages from 209.85.220.41 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes", true},
	{"yahoo mailbox not found", "552 1 Requested mail action aborted, mailbox not found", false},
	{"yahoo permanently deferred", "553 5.7.2 [TSS11] All messages from 209.85.220.41 will be permanently deferred; Retrying will NOT succeed. See https://postmaster.yahooinc.com/error-codes", false},
	// iCloud
	{"icloud no user", "550 5.1.1 <someone@icloud.com>: user does not exist", false},
	{"icloud over quota, permanent code", "552 5.2.2 <someone@icloud.com>: user is over quota", false},
	{"icloud policy", "554 5.7.1 [CS01] Message rejected due to local policy. Please visit https://support.apple.com/en-us/HT204137", false},
	{"icloud try later", "451 4.7.1 Service unavailable - try again later", true},
	// Zoho
	{"zoho no user", "550 5.1.1 User does not exist - <someone@zoho.com>", false},
	{"zoho size limit", "552 5.2.2 Mailbox size limit exceeded", false},
	{"zoho greylisted", "451 4.7.1 Greylisted by Zoho Mail, please retry in 300 seconds", true},
	// Proofpoint
	{"proofpoint spam", "550 5.7.1 Message blocked due to spam content in the message. - 421-2bf3c1a0e4 (in reply to end of DATA command)", false},
	{"proofpoint blocked", "554 5.7.0 Blocked - see https://ipcheck.proofpoint.com/?ip=209.85.220.41", false},
	{"proofpoint throttled", "421 4.7.0 mx0a-00123401.pphosted.com Throttled - try again later - see https://ipcheck.proofpoint.com/?ip=209.85.220.41", true},
	// Mimecast
	{"mimecast anti-spoofing", "550 Rejected by header based Anti-Spoofing policy: someone@client.com - https://community.mimecast.com/docs/DOC-1369#550 [A1b2C3d4E5f6g7H8I9j0kA.us412]", false},
	{"mimecast temporarily unavailable", "451 Internal resource temporarily unavailable - https://community.mimecast.com/docs/DOC-1369#451 [x1Y2z3W4v5U6t7S8r9Q0pA.uk550]", true},
	{"mimecast envelope blocked", "550 Administrative prohibition - envelope blocked - https://community.mimecast.com/docs/DOC-1369#550 [abc412.uk421]", false},
	// Barracuda
	{"barracuda permanent", "550 permanent failure for one or more recipients (someone@client.com:blocked)", false},
	{"barracuda reputation", "554 Service unavailable; Client host [209.85.220.41] blocked using Barracuda Reputation; http://www.barracudanetworks.com/reputation/?pr=1&ip=209.85.220.41", false},
	{"barracuda temporary", "451 4.3.0 Temporary failure: please try again later", true},
	// Postfix
	{"postfix user unknown", "host mx.client.com[203.0.113.5] said: 550 5.1.1 <someone@client.com>: Recipient address rejected: User unknown in virtual mailbox table (in reply to RCPT TO command)", false},
	{"postfix sender domain", "host mx.client.com[203.0.113.5] said: 450 4.1.8 <bounce@acme.com>: Sender address rejected: Domain not found (in reply to RCPT TO command)", true},
	{"postfix connect timeout", "delivery temporarily suspended: connect to mx.client.com[203.0.113.5]:25: Connection timed out", true},
	{"postfix DSN mailbox full, permanent code", "Diagnostic-Code: smtp; 552 5.2.2 Mailbox full", false},
	{"postfix DNS try again", "Host or domain name not found. Name service error for name=client.example type=MX: Host not found, try again", true},
	{"postfix unknown user, no code", `unknown user: "someone"`, false},
	{"postfix basic code only", "host mx.client.com[203.0.113.5] said: 554 Sorry, no mailbox here by that name (in reply to RCPT TO command)", false},
	// Exim
	{"exim verify failed", "SMTP error from remote mail server after RCPT TO:<someone@client.com>:\n550-Verification failed for <bounce@acme.com>\n550-No Such User Here\n550 Sender verify failed", false},
	{"exim mailbox full", "SMTP error from remote mail server after RCPT TO:<someone@client.com>: 452 4.2.2 Mailbox full", true},
	{"exim retry timeout", "retry timeout exceeded", false},
	{"exim banner version is no code", "SMTP error from remote mail server after RCPT TO:<someone@client.com>: 550 Administrative prohibition (Exim 4.94.2)", false},
	{"exim basic code after introducer", "SMTP error from remote mail server after end of data: 421 Too many concurrent SMTP connections", true},
	// qmail
	{"qmail no mailbox", "Sorry, no mailbox here by that name. (#5.1.1)", false},
	{"qmail no host", "Sorry, I couldn't find any host by that name. (#4.1.2)", true},
	{"qmail full, permanent code", "Recipient's mailbox is full, message returned to sender. (#5.2.2)", false},
	{"qmail loop", "This message is looping: it already has my Delivered-To line. (#5.4.6)", false},
	// words only
	{"words: mailbox full", "Mailbox full", true},
	{"words: over quota", "The recipient is over quota", true},
	{"words: plain rejection", "Recipient rejected", false},
	{"empty", "", false},
}

func TestBounceClassificationRealTexts(t *testing.T) {
	if len(bounceTexts) < 40 {
		t.Fatalf("only %d texts", len(bounceTexts))
	}
	for _, c := range bounceTexts {
		t.Run(c.who, func(t *testing.T) {
			if got := classifySoft("EMAIL_BOUNCE", description{texts: []string{c.text}}); got != c.soft {
				t.Errorf("soft = %v, want %v for %q", got, c.soft, c.text)
			}
			// The same text through a real payload of each shape.
			for _, shape := range shapes {
				ev, err := ParseEvent([]byte(shape.build(c.text, fixedNoise)))
				if err != nil {
					t.Fatalf("%s: %v", shape.name, err)
				}
				if ev.Soft != c.soft {
					t.Errorf("%s: soft = %v, want %v", shape.name, ev.Soft, c.soft)
				}
			}
		})
	}
}

// A soft reply that quotes something shaped like a permanent code stays soft: a status code counts only
// where a reply begins (the start of the text or of a line, after an introducer, an opening bracket, or
// right after a reply code); a textual code field is read like the reply it is.
func TestSoftRepliesQuotingCodeShapes(t *testing.T) {
	cases := []struct {
		name string
		d    description
		soft bool
	}{
		{"quoted X-Mailer header", description{texts: []string{"452 4.2.2 The recipient's mailbox is full.\nX-Mailer: PHPMailer 5.2.28 (https://github.com/PHPMailer/PHPMailer)"}}, true},
		{"RFC section in prose", description{texts: []string{"421 4.7.0 Try again later, see RFC 3463 section 5.1.1 for the codes"}}, true},
		{"a version in the banner", description{texts: []string{"451 4.3.0 Temporary local problem - please try later (mx.client.com ESMTP Postfix 3.5.13 ready)"}}, true},
		{"textual smtp_status 450", description{codes: []string{"450 Requested mail action not taken: mailbox busy, try again later"}}, true},
		{"textual smtp_status 421", description{codes: []string{"421 Service not available"}}, true},
		{"textual smtp_status words only", description{codes: []string{"Mailbox full"}}, true},
		{"textual smtp_status with an enhanced code", description{codes: []string{"452 4.2.2 Over quota"}}, true},
		{"textual smtp_status permanent", description{codes: []string{"550 5.1.1 User unknown"}}, false},
		{"textual smtp_status permanent, soft words", description{codes: []string{"552 Mailbox full"}}, false},
		{"permanent code after a soft one on its own line", description{texts: []string{"452 4.2.2 Mailbox full\n550 5.1.1 user unknown"}}, false},
	}
	for _, c := range cases {
		if got := classifySoft("EMAIL_BOUNCE", c.d); got != c.soft {
			t.Errorf("%s: soft = %v, want %v", c.name, got, c.soft)
		}
	}
	// The same textual smtp_status / smtp_code through a real flat payload.
	for _, field := range []string{"smtp_status", "smtp_code"} {
		for _, c := range []struct {
			value string
			soft  bool
		}{{"450 Requested mail action not taken: mailbox busy, try again later", true}, {"421 Service not available", true},
			{"Mailbox full", true}, {"550 5.1.1 User unknown", false}} {
			body := fmt.Sprintf(`{"event_type":"EMAIL_BOUNCE","from_email":"alice@acme.com","to_email":"lead7@example.org",`+
				`"message_id":"<CAF4821x55@mail.gmail.com>","event_timestamp":"2026-11-25T10:05:00Z",%q:%q}`, field, c.value)
			ev, err := ParseEvent([]byte(body))
			if err != nil {
				t.Fatalf("%s: %v", field, err)
			}
			if ev.Soft != c.soft {
				t.Errorf("%s %q: soft = %v, want %v", field, c.value, ev.Soft, c.soft)
			}
		}
	}
}

func TestBounceClassificationPrecedence(t *testing.T) {
	cases := []struct {
		name  string
		event string
		d     description
		soft  bool
	}{
		{"event name hard beats soft text", "HARD_BOUNCE", description{texts: []string{"452 4.2.2 mailbox full"}}, false},
		{"event name soft beats hard text", "SOFT_BOUNCE", description{texts: []string{"550 5.1.1 no such user"}}, true},
		{"bounce_type hard beats soft code", "EMAIL_BOUNCE", description{types: []string{"hard"}, texts: []string{"452 4.2.2 mailbox full"}}, false},
		{"bounce_type soft beats hard code", "EMAIL_BOUNCE", description{types: []string{"Transient"}, texts: []string{"550 5.1.1"}}, true},
		{"bounce_type permanent", "BOUNCED", description{types: []string{"Permanent"}}, false},
		{"unknown bounce_type lets codes speak", "BOUNCED", description{types: []string{"Undetermined"}, texts: []string{"421 4.7.0 later"}}, true},
		{"enhanced class beats basic code", "EMAIL_BOUNCE", description{texts: []string{"550 4.2.2 over quota"}}, true},
		{"enhanced permanent beats basic soft", "EMAIL_BOUNCE", description{texts: []string{"452 5.2.2 mailbox full"}}, false},
		{"permanent enhanced wins over a soft one", "EMAIL_BOUNCE", description{texts: []string{"4.2.2 then\n5.1.1"}}, false},
		{"an enhanced code inside prose is no status code", "EMAIL_BOUNCE", description{texts: []string{"4.2.2 then 5.1.1"}}, true},
		{"basic permanent code beats soft words", "EMAIL_BOUNCE", description{texts: []string{"550 mailbox full, try again later"}}, false},
		{"code field", "EMAIL_BOUNCE", description{codes: []string{"452"}, texts: []string{"over"}}, true},
		{"code field permanent", "EMAIL_BOUNCE", description{codes: []string{"550"}, texts: []string{"mailbox full"}}, false},
		{"enhanced code field", "EMAIL_BOUNCE", description{codes: []string{"4.4.7"}}, true},
		{"a number in prose is no reply code", "EMAIL_BOUNCE", description{texts: []string{"Rejected after 452 attempts"}}, false},
		{"an IP is no enhanced code", "EMAIL_BOUNCE", description{texts: []string{"blocked: 4.2.2.1 listed"}}, false},
		{"a queue id is no code", "EMAIL_BOUNCE", description{texts: []string{"rejected id=421-4ab2 x452y"}}, false},
	}
	for _, c := range cases {
		if got := classifySoft(c.event, c.d); got != c.soft {
			t.Errorf("%s: soft = %v, want %v", c.name, got, c.soft)
		}
	}
}

// noise supplies the values of every field outside the description.
type noise func(kind string) string

// fixedNoise is the kind of id that broke the first classifier: digits that read as 4xx / 4.x.x.
func fixedNoise(kind string) string {
	switch kind {
	case "uuid":
		return "7c9e6679-7425-412a-944b-4.2.2d4e9a1"
	case "msgid":
		return "<CAJ+452-4.2.1=421@mail.gmail.com>"
	case "time":
		return "2026-11-25T10:05:04.412Z"
	case "num":
		return "421"
	}
	return "452 4.2.2 mailbox full, try again later, deferred, temporarily"
}

// shapes build a bounce payload of each of Smartlead's shapes around a description text.
var shapes = []struct {
	name  string
	build func(text string, n noise) string
}{
	{"flat", func(text string, n noise) string {
		return mustJSON(map[string]any{
			"webhook_id": n("num"), "stats_id": n("uuid"), "event_type": "EMAIL_BOUNCE",
			"event_timestamp": time.Now().UTC().Format(time.RFC3339Nano), "time_sent": n("time"),
			"from_email": "alice@acme.com", "to_email": "lead" + n("num") + "@example.org", "to_name": n("words"),
			"subject": n("words"), "campaign_id": n("num"), "campaign_name": n("words"), "sequence_number": n("num"),
			"sent_message": map[string]any{"message_id": n("msgid"), "html": n("words"), "text": n("words"), "time": n("time")},
			"message_id":   n("msgid"), "app_url": "https://app.smartlead.ai/app/master-inbox?id=" + n("uuid"),
			"bounce_reply_message_id": n("msgid"), "secret_key": n("uuid"), "description": n("words"),
			"bounce_message": map[string]any{"message_id": n("msgid"), "html": n("words") + " " + n("msgid"),
				"text": text, "time": n("time")},
			"metadata": map[string]any{"webhook_created_at": n("time"), "note": n("words")},
		})
	}},
	{"api", func(text string, n noise) string {
		return mustJSON(map[string]any{
			"event_type": "BOUNCED", "email_account": "alice@acme.com", "lead_email": "lead" + n("num") + "@example.org",
			"campaign_id": n("num"), "message": text, "timestamp": time.Now().UTC().Format(time.RFC3339),
			"id": n("uuid"), "subject": n("words"),
		})
	}},
	{"nested", func(text string, n noise) string {
		return mustJSON(map[string]any{
			"event": "EMAIL_BOUNCED", "timestamp": time.Now().UTC().Format(time.RFC3339), "campaign_id": n("num"),
			"campaign_name": n("words"), "lead_id": n("num"), "email_account_id": 456, "sequence_number": n("num"),
			"lead":   map[string]any{"email": "lead@example.org", "first_name": n("words")},
			"email":  map[string]any{"subject": n("words"), "message_id": n("msgid")},
			"bounce": map[string]any{"reason": text, "message_id": n("msgid"), "time": n("time"), "url": n("words")},
		})
	}},
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// randomNoise draws ids, timestamps and numbers, often laced with SMTP codes and soft words.
func randomNoise(r *rand.Rand) noise {
	pieces := []string{"452", "4.2.2", "421-4.7.0", "450 4.2.1", "deferred", "temporarily", "mailbox full",
		"try again later", "soft", "5.1.1", "550", "over quota", "\n451 ", "(#4.4.1)"}
	return func(kind string) string {
		var b strings.Builder
		switch kind {
		case "uuid":
			fmt.Fprintf(&b, "%08x-%04x-%04x-%04x-%012x", r.Uint32(), r.IntN(1<<16), r.IntN(1<<16), r.IntN(1<<16), r.Uint64()>>16)
		case "msgid":
			fmt.Fprintf(&b, "<CA%s+%d-%d.%d.%d@mail.gmail.com>", strings.Repeat("x", r.IntN(5)), r.IntN(1000), r.IntN(6), r.IntN(8), r.IntN(10))
		case "time":
			return time.Unix(r.Int64N(2e9), r.Int64N(1e9)).UTC().Format(time.RFC3339Nano)
		case "num":
			return fmt.Sprint(r.IntN(1000))
		}
		for range 1 + r.IntN(4) {
			b.WriteString(pieces[r.IntN(len(pieces))])
			b.WriteByte(' ')
		}
		return b.String()
	}
}

// TestClassificationIgnoresEverythingButTheDescription randomises every id, timestamp, number and free
// text outside the description, with SMTP codes and soft words among them: the class never changes.
func TestClassificationIgnoresEverythingButTheDescription(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, c := range bounceTexts {
		for _, shape := range shapes {
			for range 50 {
				body := shape.build(c.text, randomNoise(r))
				ev, err := ParseEvent([]byte(body))
				if err != nil {
					t.Fatalf("%s/%s: %v", c.who, shape.name, err)
				}
				if ev.Soft != c.soft {
					t.Fatalf("%s/%s: soft = %v, want %v; payload %s", c.who, shape.name, ev.Soft, c.soft, body)
				}
			}
		}
	}
}

// FuzzClassificationIgnoresIDs: whatever the fuzzer puts into the ids and other fields, the class is the
// description's alone.
func FuzzClassificationIgnoresIDs(f *testing.F) {
	for i, c := range bounceTexts {
		f.Add(c.text, "452 4.2.2 deferred", uint8(i%3))
	}
	f.Fuzz(func(t *testing.T, text, junk string, shape uint8) {
		want := classifySoft("EMAIL_BOUNCE", description{texts: []string{text}})
		s := shapes[int(shape)%len(shapes)]
		body := s.build(text, func(string) string { return junk })
		ev, err := ParseEvent([]byte(body))
		if err != nil {
			return // e.g. a junk lead address; the class is not at stake
		}
		if ev.Soft != want {
			t.Fatalf("soft = %v, want %v: %s", ev.Soft, want, body)
		}
	})
}
