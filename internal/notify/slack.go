package notify

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/slack-go/slack"
	"k8s.io/apimachinery/pkg/types"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
)

// maxListed is how many notices a grouped message lists one by one.
const maxListed = 20

// renderSlack builds a Slack incoming-webhook message with blocks: the summary, the notices (at most
// maxListed of them), and the policy and its mode.
func renderSlack(summary string, policy types.NamespacedName, mode bgv1.Mode, batch []bgv1.Notice) ([]byte, error) {
	lines := make([]string, 0, min(len(batch), maxListed)+1)
	for i, n := range batch {
		if i == maxListed {
			lines = append(lines, fmt.Sprintf("… and %d more", len(batch)-maxListed))
			break
		}
		lines = append(lines, "• "+line(n))
	}
	blocks := []slack.Block{
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "*"+summary+"*", false, false), nil, nil),
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, truncate(strings.Join(lines, "\n"), 2900), false, false), nil, nil),
		slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType,
			fmt.Sprintf("ProtectionPolicy %s · mode %s", policy, mode), false, false)),
	}
	return json.Marshal(&slack.WebhookMessage{Text: summary, Blocks: &slack.Blocks{BlockSet: blocks}})
}
