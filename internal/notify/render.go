package notify

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/types"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
)

// Render builds the message for a batch of notices: a Slack incoming-webhook message with blocks, or the
// generic JSON document.
func Render(typ bgv1.NotificationType, policy types.NamespacedName, mode bgv1.Mode, batch []bgv1.Notice) ([]byte, error) {
	summary := Summary(policy, mode, batch)
	if typ == bgv1.NotificationSlack {
		return renderSlack(summary, policy, mode, batch)
	}
	return renderJSON(summary, policy, mode, batch)
}

// Summary is a message's first line: the notice itself, or the count of each kind in a burst.
func Summary(policy types.NamespacedName, mode bgv1.Mode, batch []bgv1.Notice) string {
	if len(batch) == 1 {
		return line(batch[0])
	}
	var kinds []string
	count := map[bgv1.NotificationEvent]int{}
	for _, n := range batch {
		if count[n.Event] == 0 {
			kinds = append(kinds, string(n.Event))
		}
		count[n.Event]++
	}
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%d %s", count[bgv1.NotificationEvent(k)], k)
	}
	return fmt.Sprintf("bounceguard, %s (%s): %s", policy, mode, strings.Join(parts, ", "))
}

// line is one notice in words: "Paused: alice@acme.com (acme.com): 5 bounces in the last 100 sends ...".
func line(n bgv1.Notice) string {
	who := n.Mailbox
	switch {
	case who == "":
		who = n.Domain
	case n.Domain != "":
		who += " (" + n.Domain + ")"
	}
	return fmt.Sprintf("%s: %s: %s", n.Event, who, n.Evidence)
}
