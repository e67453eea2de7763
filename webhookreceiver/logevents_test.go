package webhookreceiver

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/bounceguard/bounceguard/internal/eventlog"
)

// With --log-events, each recorded event (not a duplicate, not an ignored one) is one JSON line with what
// `kubectl bounceguard whatif` reads; the lead is a digest, never the address.
func TestLogEvents(t *testing.T) {
	var buf bytes.Buffer
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&buf), zapcore.InfoLevel)
	s, _ := newTestServer(t, nil, zapr.NewLogger(zap.New(core)).WithName("receiver"))
	s.LogEvents = true
	h := s.Handler()
	send := `{"event_type":"EMAIL_SENT","from_email":"alice@acme.com","to_email":"Lead.Person@Client.example","event_timestamp":"` +
		time.Now().UTC().Add(-time.Minute).Format(time.RFC3339) + `","sent_message":{"message_id":"<CAF1a2@mail.gmail.com>"}}`
	bounce := `{"event_type":"EMAIL_BOUNCE","from_email":"alice@acme.com","lead_email":"other@client.example",` +
		`"bounce_message":"550 5.1.1 <other@client.example>: Recipient address rejected: User unknown"}`
	open := `{"event_type":"EMAIL_OPEN","from_email":"alice@acme.com","to_email":"x@client.example"}`
	for _, body := range []string{send, send, bounce, open} {
		if rec := post(h, body, signed(body)); rec.Code != http.StatusOK {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		if m["msg"] == eventlog.Message {
			lines = append(lines, m)
		}
	}
	if len(lines) != 2 {
		t.Fatalf("%d event lines for a send, its duplicate, a bounce and an open:\n%s", len(lines), buf.String())
	}
	for i, want := range []struct{ typ, lead string }{{"send", LeadDigest("lead.person@client.example")}, {"bounce", LeadDigest("other@client.example")}} {
		l := lines[i]
		if l["logger"] != "receiver."+eventlog.Name || l["sender"] != "alice@acme.com" || l["domain"] != "acme.com" ||
			l["namespace"] != "acme" || l["policy"] != "default" || l["type"] != want.typ || l["lead"] != want.lead {
			t.Errorf("line %d: %v", i, l)
		}
		if _, err := time.Parse(time.RFC3339Nano, l["at"].(string)); err != nil {
			t.Errorf("line %d: at %v", i, l["at"])
		}
	}
	if _, ok := lines[0]["eventTime"]; !ok {
		t.Error("the send's own timestamp is missing")
	}
	if out := strings.ToLower(buf.String()); strings.Contains(out, "client.example") {
		t.Fatalf("a lead's address reached the log:\n%s", buf.String())
	}
}
