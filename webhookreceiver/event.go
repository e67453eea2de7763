package webhookreceiver

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/bounceguard/bounceguard/internal/tally"
)

// Event is a parsed Smartlead webhook.
type Event struct {
	// Name is the event name, upper-cased (EMAIL_SENT, EMAIL_BOUNCE, ...).
	Name string
	// Kind is tally.Send or tally.Bounce; 0 for events bounceguard ignores (opens, replies, ...).
	Kind tally.Kind
	// Soft marks a temporary bounce (see classifySoft), not counted unless the policy counts soft bounces.
	Soft bool
	// Sender is the sending mailbox's address, lower-cased ("" when the payload only has an account id).
	Sender string
	// AccountID is the Smartlead email account id of the sender (0 when absent).
	AccountID int64
	// At is when the event happened by its own timestamp; zero when the payload has none that parses.
	At time.Time
	// Fingerprint is a digest of the event's identifying fields, always one of its de-duplication ids.
	Fingerprint string
	// lead is the lead's address, lower-cased ("" when the payload names none). It is only ever logged as
	// LeadDigest, and only with --log-events.
	lead string
}

var (
	// ErrMalformed is returned for a body that is not a JSON object.
	ErrMalformed = errors.New("malformed JSON: the body must be a JSON object")
	// ErrNoEvent is returned for a payload without an event name.
	ErrNoEvent = errors.New("missing event: neither event_type nor event is set")
	// ErrNoSender is returned for a payload that names no sending mailbox.
	ErrNoSender = errors.New("missing sender: none of from_email, email_account or email_account_id is set")
)

var eventKinds = map[string]tally.Kind{
	"EMAIL_SENT": tally.Send, "FIRST_EMAIL_SENT": tally.Send, "SENT": tally.Send,
	"EMAIL_BOUNCE": tally.Bounce, "EMAIL_BOUNCED": tally.Bounce, "BOUNCED": tally.Bounce,
	"HARD_BOUNCE": tally.Bounce, "SOFT_BOUNCE": tally.Bounce, "DELIVERY_FAILURE": tally.Bounce,
}

// payload holds the fields bounceguard reads from Smartlead's three shapes: flat (event_type, from_email,
// to_email, bounce_message, ...), the shape of webhooks created through the API (event_type,
// email_account, lead_email, message, timestamp) and nested (event, email_account_id, lead{...}). Every
// other field is ignored. Values whose JSON type varies between Smartlead's payloads (numbers sent as
// strings, objects sent as strings) are kept raw and read leniently.
type payload struct {
	EventType      string          `json:"event_type"`
	Event          string          `json:"event"`
	FromEmail      string          `json:"from_email"`
	EmailAccount   json.RawMessage `json:"email_account"`
	EmailAccountID json.RawMessage `json:"email_account_id"`
	ToEmail        string          `json:"to_email"`
	LeadEmail      string          `json:"lead_email"`
	MessageID      string          `json:"message_id"`
	StatsID        json.RawMessage `json:"stats_id"`
	CampaignID     json.RawMessage `json:"campaign_id"`
	SequenceNumber json.RawMessage `json:"sequence_number"`
	EventTimestamp json.RawMessage `json:"event_timestamp"`
	Timestamp      json.RawMessage `json:"timestamp"`
	TimeSent       json.RawMessage `json:"time_sent"`
	EventTime      json.RawMessage `json:"event_time"`
	SentMessage    json.RawMessage `json:"sent_message"`
	Message        json.RawMessage `json:"message"`
	BounceMessage  json.RawMessage `json:"bounce_message"`
	BounceReason   json.RawMessage `json:"bounce_reason"`
	BounceType     json.RawMessage `json:"bounce_type"`
	BouncePreview  json.RawMessage `json:"bounce_reply_email_preview"`
	SMTPStatus     json.RawMessage `json:"smtp_status"`
	SMTPCode       json.RawMessage `json:"smtp_code"`
	SMTPResponse   json.RawMessage `json:"smtp_response"`
	DiagnosticCode json.RawMessage `json:"diagnostic_code"`
	Lead           *struct {
		Email string `json:"email"`
	} `json:"lead"`
	Email *struct {
		MessageID string `json:"message_id"`
	} `json:"email"`
	Bounce json.RawMessage `json:"bounce"`
}

// ParseEvent reads a Smartlead webhook body of any of its three shapes.
func ParseEvent(body []byte) (Event, error) {
	var p payload
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&p); err != nil {
		return Event{}, ErrMalformed
	}
	if dec.More() {
		return Event{}, ErrMalformed
	}
	name := strings.ToUpper(strings.TrimSpace(firstNonEmpty(p.EventType, p.Event)))
	if name == "" {
		return Event{}, ErrNoEvent
	}
	ev := Event{Name: name, Kind: eventKinds[name]}
	if ev.Kind == 0 {
		return ev, nil
	}
	account := p.account()
	ev.Sender = strings.ToLower(strings.TrimSpace(firstNonEmpty(p.FromEmail, account.email)))
	ev.AccountID = account.id
	if id, ok := rawInt(p.EmailAccountID); ok && id > 0 {
		ev.AccountID = id
	}
	if ev.Sender == "" && ev.AccountID == 0 {
		return Event{}, ErrNoSender
	}
	if ev.Sender != "" && !plausibleEmail(ev.Sender) {
		return Event{}, fmt.Errorf("invalid sender address: not an email address")
	}
	if ev.Kind == tally.Bounce {
		ev.Soft = classifySoft(name, p.description())
	}
	ev.At = p.eventTime(ev.Kind)
	ev.Fingerprint = p.fingerprint(name)
	ev.lead = strings.ToLower(strings.TrimSpace(p.leadAddress()))
	return ev, nil
}

// leadAddress is the lead's address as the payload gives it: to_email, lead_email or lead.email.
func (p *payload) leadAddress() string {
	lead := firstNonEmpty(p.ToEmail, p.LeadEmail)
	if lead == "" && p.Lead != nil {
		lead = p.Lead.Email
	}
	return lead
}

// LeadDigest is how a lead's address appears in logs: "lead:" and the first 12 hex digits of its SHA-256,
// enough to tell leads apart and to find one whose address is known, not to read it.
func LeadDigest(address string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(address))))
	return "lead:" + hex.EncodeToString(sum[:6])
}

// accountRef is what email_account says about the sender: an address, an id, or both.
type accountRef struct {
	email string
	id    int64
}

// account reads email_account: the sender's address (the API-created shape), or an object or number
// naming the account.
func (p *payload) account() accountRef {
	if len(p.EmailAccount) == 0 {
		return accountRef{}
	}
	var s string
	if json.Unmarshal(p.EmailAccount, &s) == nil {
		if strings.Contains(s, "@") {
			return accountRef{email: s}
		}
		id, _ := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		return accountRef{id: max(id, 0)}
	}
	var obj struct {
		Email     string          `json:"email"`
		FromEmail string          `json:"from_email"`
		ID        json.RawMessage `json:"id"`
	}
	if json.Unmarshal(p.EmailAccount, &obj) == nil {
		id, _ := rawInt(obj.ID)
		return accountRef{email: firstNonEmpty(obj.FromEmail, obj.Email), id: max(id, 0)}
	}
	id, _ := rawInt(p.EmailAccount)
	return accountRef{id: max(id, 0)}
}

// apiShape reports whether the payload is the shape of webhooks created through Smartlead's API, whose
// sender field is email_account and whose message field describes the event.
func (p *payload) apiShape() bool { return len(p.EmailAccount) > 0 && p.FromEmail == "" }

// Keys of a bounce description object that are read, by what they hold. Every other key (message_id,
// id, time, html, headers, urls, ...) is never read: ids and timestamps are not evidence.
var (
	textKeys = map[string]bool{"text": true, "body": true, "message": true, "reason": true, "description": true,
		"diagnostic_code": true, "diagnostic": true, "diagnosticcode": true, "smtp_response": true, "response": true,
		"error": true, "details": true, "bounce_reason": true, "smtp_message": true, "status_text": true}
	codeKeys = map[string]bool{"code": true, "smtp_code": true, "status_code": true, "smtp_status": true,
		"status": true, "enhanced_code": true, "enhanced_status_code": true, "reply_code": true}
	typeKeys = map[string]bool{"type": true, "bounce_type": true, "category": true, "bounce_category": true}
)

// description gathers the bounce's description: only the fields that say why it bounced.
func (p *payload) description() description {
	var d description
	for _, raw := range []json.RawMessage{p.BounceMessage, p.Bounce} {
		d.walk(raw, "text")
	}
	for _, raw := range []json.RawMessage{p.BounceReason, p.BouncePreview, p.SMTPResponse, p.DiagnosticCode} {
		d.walk(raw, "text")
	}
	for _, raw := range []json.RawMessage{p.SMTPStatus, p.SMTPCode} {
		d.walk(raw, "code")
	}
	d.walk(p.BounceType, "type")
	if p.apiShape() {
		d.walk(p.Message, "text")
	}
	return d
}

// walk adds a JSON value to the description as role (text, code or type); inside objects only the
// known description keys are followed.
func (d *description) walk(raw json.RawMessage, role string) {
	if len(raw) == 0 {
		return
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return
	}
	d.add(v, role, 0)
}

func (d *description) add(v any, role string, depth int) {
	if depth > 8 {
		return
	}
	switch t := v.(type) {
	case string:
		switch role {
		case "text":
			d.texts = append(d.texts, t)
		case "code":
			d.codes = append(d.codes, t)
		case "type":
			d.types = append(d.types, t)
			d.texts = append(d.texts, t) // "Mailbox full" as a type still speaks as words
		}
	case float64:
		if role != "type" {
			d.codes = append(d.codes, strconv.FormatFloat(t, 'f', -1, 64))
		}
	case []any:
		for _, e := range t {
			d.add(e, role, depth+1)
		}
	case map[string]any:
		for k, e := range t {
			switch k = strings.ToLower(k); {
			case textKeys[k]:
				d.add(e, "text", depth+1)
			case codeKeys[k]:
				d.add(e, "code", depth+1)
			case typeKeys[k]:
				d.add(e, "type", depth+1)
			}
		}
	}
}

// eventTime reads the event's own timestamp. For a bounce, time_sent is when the bounced email was sent,
// not when it bounced, so it is read only for sends; a bounce's own time is event_timestamp, then
// bounce_message.time, then timestamp.
func (p *payload) eventTime(kind tally.Kind) time.Time {
	candidates := []json.RawMessage{p.EventTimestamp, p.EventTime}
	if kind == tally.Bounce {
		var bm struct {
			Time json.RawMessage `json:"time"`
		}
		if json.Unmarshal(p.BounceMessage, &bm) == nil {
			candidates = append(candidates, bm.Time)
		}
	}
	candidates = append(candidates, p.Timestamp)
	if kind == tally.Send {
		candidates = append(candidates, p.TimeSent)
	}
	for _, raw := range candidates {
		if t, ok := parseTime(raw); ok {
			return t
		}
	}
	return time.Time{}
}

// timeLayouts are the timestamp forms accepted; a zone-less time is UTC.
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999", time.RFC1123Z, time.RFC1123}

// parseTime reads a timestamp given as a string in a common layout, or as Unix seconds or milliseconds.
func parseTime(raw json.RawMessage) (time.Time, bool) {
	if len(raw) == 0 {
		return time.Time{}, false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		s = string(raw)
	}
	s = strings.TrimSpace(s)
	if s == "" || s == "null" {
		return time.Time{}, false
	}
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		switch {
		case n > 1e11 && n < 1e14: // milliseconds
			return time.UnixMilli(int64(n)).UTC(), true
		case n > 1e8 && n <= 1e11: // seconds
			return time.Unix(int64(n), 0).UTC(), true
		}
		return time.Time{}, false
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// fingerprint digests the fields that identify one event (never secret_key), so that a retry or a replay
// is recognised whatever its X-Request-Id. The digest does not reveal the lead's address.
func (p *payload) fingerprint(name string) string {
	messageID := p.MessageID
	if messageID == "" && p.Email != nil {
		messageID = p.Email.MessageID
	}
	if messageID == "" {
		var sm struct {
			MessageID string `json:"message_id"`
			ID        string `json:"id"`
		}
		if json.Unmarshal(p.SentMessage, &sm) == nil {
			messageID = firstNonEmpty(sm.MessageID, sm.ID)
		}
	}
	lead := p.leadAddress()
	var bounceID string
	var bm struct {
		MessageID string `json:"message_id"`
	}
	if json.Unmarshal(p.BounceMessage, &bm) == nil {
		bounceID = bm.MessageID
	}
	h := sha256.New()
	for _, f := range []string{name, strings.ToLower(p.FromEmail), string(p.EmailAccount), string(p.EmailAccountID),
		strings.ToLower(lead), messageID, bounceID, string(p.StatsID), string(p.CampaignID), string(p.SequenceNumber),
		string(p.EventTimestamp), string(p.Timestamp), string(p.TimeSent)} {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	return "f" + base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:12])
}

// EventIDs returns the de-duplication ids of an event: its payload fingerprint, always, and a digest of
// X-Request-Id when the request has one (else ""). The event is a duplicate when either was seen before:
// proxies (ingress-nginx, Envoy, Istio) stamp a fresh request id on every delivery, and a signature does
// not cover headers, so the request id alone cannot tell a retry or a replay. Both are short and reveal
// nothing of the payload.
func EventIDs(requestID string, ev Event) (fingerprint, request string) {
	if requestID == "" {
		return ev.Fingerprint, ""
	}
	sum := sha256.Sum256([]byte(requestID))
	return ev.Fingerprint, "r" + base64.RawURLEncoding.EncodeToString(sum[:12])
}

// rawInt reads a JSON number or a string holding one.
func rawInt(raw json.RawMessage) (int64, bool) {
	if len(raw) == 0 {
		return 0, false
	}
	s := strings.Trim(string(raw), `"`)
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	return n, err == nil
}

// plausibleEmail is a cheap shape check; the Mailbox schema validates fully on create.
func plausibleEmail(s string) bool {
	at := strings.IndexByte(s, '@')
	return at > 0 && at < len(s)-3 && strings.IndexByte(s[at+1:], '.') > 0 && len(s) <= 254 &&
		!strings.ContainsAny(s, " \t\r\n<>\"")
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
