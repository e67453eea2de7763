package webhookreceiver

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/bounceguard/bounceguard/tally"
)

// Event is a parsed Smartlead webhook.
type Event struct {
	// Name is the event name, upper-cased (EMAIL_SENT, EMAIL_BOUNCE, ...).
	Name string
	// Kind is tally.Send or tally.Bounce; 0 for events bounceguard ignores (opens, replies, ...).
	Kind tally.Kind
	// Soft marks a temporary bounce.
	Soft bool
	// Sender is the sending mailbox's address, lower-cased ("" when the payload only has an account id).
	Sender string
	// AccountID is the Smartlead email account id of the sender (0 when absent).
	AccountID int64
	// Fingerprint is a digest of the event's identifying fields, used when there is no X-Request-Id.
	Fingerprint string
}

var (
	// ErrMalformed is returned for a body that is not a JSON object.
	ErrMalformed = errors.New("malformed JSON: the body must be a JSON object")
	// ErrNoEvent is returned for a payload without an event name.
	ErrNoEvent = errors.New("missing event: neither event_type nor event is set")
	// ErrNoSender is returned for a payload that names no sending mailbox.
	ErrNoSender = errors.New("missing sender: neither from_email nor email_account_id is set")
)

var eventKinds = map[string]tally.Kind{
	"EMAIL_SENT": tally.Send, "FIRST_EMAIL_SENT": tally.Send, "SENT": tally.Send,
	"EMAIL_BOUNCE": tally.Bounce, "EMAIL_BOUNCED": tally.Bounce, "BOUNCED": tally.Bounce,
	"HARD_BOUNCE": tally.Bounce, "SOFT_BOUNCE": tally.Bounce, "DELIVERY_FAILURE": tally.Bounce,
}

// payload holds the fields bounceguard reads from both Smartlead shapes; every other field is ignored.
// Values whose JSON type varies between Smartlead's payloads (numbers sent as strings, objects sent as
// strings) are kept raw and read leniently.
type payload struct {
	EventType      string          `json:"event_type"`
	Event          string          `json:"event"`
	FromEmail      string          `json:"from_email"`
	EmailAccountID json.RawMessage `json:"email_account_id"`
	ToEmail        string          `json:"to_email"`
	MessageID      string          `json:"message_id"`
	StatsID        json.RawMessage `json:"stats_id"`
	CampaignID     json.RawMessage `json:"campaign_id"`
	SequenceNumber json.RawMessage `json:"sequence_number"`
	EventTimestamp string          `json:"event_timestamp"`
	Timestamp      string          `json:"timestamp"`
	SentMessage    json.RawMessage `json:"sent_message"`
	BounceMessage  json.RawMessage `json:"bounce_message"`
	BounceReason   json.RawMessage `json:"bounce_reason"`
	BounceType     json.RawMessage `json:"bounce_type"`
	SMTPStatus     json.RawMessage `json:"smtp_status"`
	Lead           *struct {
		Email string `json:"email"`
	} `json:"lead"`
	Email *struct {
		MessageID string `json:"message_id"`
	} `json:"email"`
	Bounce json.RawMessage `json:"bounce"`
}

// ParseEvent reads a Smartlead webhook body of either shape: flat (event_type, from_email, ...) or
// nested (event, email_account_id, lead{...}, ...).
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
	ev.Sender = strings.ToLower(strings.TrimSpace(p.FromEmail))
	if id, ok := rawInt(p.EmailAccountID); ok && id > 0 {
		ev.AccountID = id
	}
	if ev.Sender == "" && ev.AccountID == 0 {
		return Event{}, ErrNoSender
	}
	if ev.Sender != "" && !plausibleEmail(ev.Sender) {
		return Event{}, fmt.Errorf("invalid from_email: not an email address")
	}
	if ev.Kind == tally.Bounce {
		ev.Soft = name == "SOFT_BOUNCE" || isSoftBounce(p.bounceText())
	}
	ev.Fingerprint = p.fingerprint(name)
	return ev, nil
}

// bounceText gathers every bounce description the payload carries.
func (p *payload) bounceText() string {
	var parts []string
	for _, raw := range []json.RawMessage{p.BounceMessage, p.BounceReason, p.BounceType, p.SMTPStatus, p.Bounce} {
		parts = collectStrings(raw, parts)
	}
	return strings.Join(parts, " ")
}

// fingerprint digests the fields that identify one event, so that a retry without X-Request-Id is
// recognised. The digest does not reveal the lead's address.
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
	lead := p.ToEmail
	if lead == "" && p.Lead != nil {
		lead = p.Lead.Email
	}
	h := sha256.New()
	for _, f := range []string{name, strings.ToLower(p.FromEmail), string(p.EmailAccountID), strings.ToLower(lead),
		messageID, string(p.StatsID), string(p.CampaignID), string(p.SequenceNumber),
		firstNonEmpty(p.EventTimestamp, p.Timestamp)} {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	return "f" + base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:12])
}

// EventID returns the de-duplication id of an event: a digest of X-Request-Id when the request has
// one, else the payload fingerprint. Both are short and reveal nothing of the payload.
func EventID(requestID string, ev Event) string {
	if requestID == "" {
		return ev.Fingerprint
	}
	sum := sha256.Sum256([]byte(requestID))
	return "r" + base64.RawURLEncoding.EncodeToString(sum[:12])
}

var (
	softCode     = regexp.MustCompile(`(^|[^0-9.])4[0-9]{2}([^0-9]|$)`)
	softEnhanced = regexp.MustCompile(`(^|[^0-9.])4\.[0-9]{1,3}\.[0-9]{1,3}`)
	softWord     = regexp.MustCompile(`(^|[^a-z])soft([^a-z]|$)`)
	softWords    = []string{"mailbox full", "mailbox is full", "over quota", "try again later",
		"deferred", "temporar", "greylist"}
)

// isSoftBounce reports whether a bounce description says the failure is temporary.
func isSoftBounce(text string) bool {
	if text == "" {
		return false
	}
	lower := strings.ToLower(text)
	for _, w := range softWords {
		if strings.Contains(lower, w) {
			return true
		}
	}
	return softWord.MatchString(lower) || softCode.MatchString(lower) || softEnhanced.MatchString(lower)
}

// collectStrings appends every string (and number) found in a JSON value.
func collectStrings(raw json.RawMessage, out []string) []string {
	if len(raw) == 0 {
		return out
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return out
	}
	var walk func(any)
	walk = func(v any) {
		switch t := v.(type) {
		case string:
			out = append(out, t)
		case float64:
			out = append(out, strconv.FormatFloat(t, 'f', -1, 64))
		case []any:
			for _, e := range t {
				walk(e)
			}
		case map[string]any:
			for _, e := range t {
				walk(e)
			}
		}
	}
	walk(v)
	return out
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
