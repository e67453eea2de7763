package system_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/bounceguard/bounceguard/webhookreceiver"
)

// webhook is one Smartlead-shaped event as a load client sends it.
type webhook struct {
	body      []byte
	requestID string
}

// sendEvent builds a flat-shape send event (bounce when bounce is true) with a unique request id.
func sendEvent(sender string, seq int, bounce bool) webhook {
	typ, extra := "EMAIL_SENT", ""
	if bounce {
		typ, extra = "EMAIL_BOUNCE", `,"bounce_message":"550 5.1.1 user unknown"`
	}
	body := fmt.Sprintf(`{"event_type":%q,"from_email":%q,"to_email":"lead%d@example.org","campaign_id":7,`+
		`"sequence_number":1,"sent_message":{"message_id":"<%s-%d@mail>"},"event_timestamp":%q%s}`,
		typ, sender, seq, strings.ReplaceAll(sender, "@", "."), seq, time.Now().UTC().Format(time.RFC3339Nano), extra)
	return webhook{body: []byte(body), requestID: fmt.Sprintf("%s-%d", sender, seq)}
}

var httpClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}

// deliver posts a signed webhook once and returns the status code and answer.
func deliver(addr, org, secret string, w webhook) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+webhookreceiver.WebhookPath, bytes.NewReader(w.body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Organization-Id", org)
	req.Header.Set("X-Smartlead-Signature", webhookreceiver.Sign(w.body, secret))
	if w.requestID != "" {
		req.Header.Set("X-Request-Id", w.requestID)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(answer), nil
}

// deliverUntilAcknowledged retries, as Smartlead does, until the event is acknowledged with a 2xx.
func deliverUntilAcknowledged(addr func() string, org, secret string, w webhook, deadline time.Time) (string, error) {
	for {
		code, answer, err := deliver(addr(), org, secret, w)
		if err == nil && code == http.StatusOK {
			return answer, nil
		}
		if time.Now().After(deadline) {
			return "", errors.Join(fmt.Errorf("not acknowledged before the deadline: code %d, answer %s", code, answer), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
