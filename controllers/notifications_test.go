package controllers_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/testenv/tenant"
)

// slackSink stands in for a Slack incoming webhook: it fails its first request, then records every
// message it accepts.
type slackSink struct {
	mu       sync.Mutex
	failures int
	accepted []string
	seen     []string
}

func (s *slackSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = append(s.seen, string(body))
	if s.failures > 0 {
		s.failures--
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	s.accepted = append(s.accepted, string(body))
	_, _ = w.Write([]byte("ok"))
}

func (s *slackSink) messages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.accepted...)
}

// noticeLine is one notice as a Slack message lists it: "• Paused: box0@cascade.io (cascade.io): ...".
var noticeLine = regexp.MustCompile(`• (\w+): ([^ :(]+)`)

var _ = Describe("Notifications", func() {
	It("announce a domain cascade to Slack grouped, once each, retried after the target failed, clean of secrets", func() {
		sink := &slackSink{failures: 1}
		srv := httptest.NewServer(sink)
		DeferCleanup(srv.Close)
		const urlToken = "T0AAA/B0BBB/secret-url-token"
		f := newFixture(bgv1.ModeEnforce, tenant.LongCooldown, func(s *bgv1.ProtectionPolicySpec) {
			s.Mailbox.Warning = bgv1.Threshold{Bounces: 1, WithinSends: 2}
			s.Mailbox.Pause = bgv1.Threshold{Bounces: 2, WithinSends: 2}
			s.Safety = bgv1.SafetyRules{MaxPausedPercent: 100, MinimumMailboxes: 1000}
			s.Notifications = []bgv1.NotificationTarget{{Type: bgv1.NotificationSlack,
				URLSecretRef: bgv1.SecretKeySelector{Name: "alerts", Key: "slackURL"}}}
		})
		Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "alerts", Namespace: f.NS},
			StringData: map[string]string{"slackURL": srv.URL + "/services/" + urlToken}})).To(Succeed())
		mbs, ids := f.fleet("cascade.io", 3)

		By("two of the domain's three mailboxes bounce (real SMTP texts naming leads): the domain pauses the third")
		f.Bounces(mbs[0].Spec.Email, tenant.HardBounceTexts[2:4]...)
		f.Bounces(mbs[1].Spec.Email, tenant.HardBounceTexts[2:4]...)
		Eventually(func() []bool { return f.suspended(ids) }).Should(Equal([]bool{true, true, true}))

		// Each mailbox's first bounce may turn it Warning (announced) or be judged together with its second
		// (straight to Paused): Warnings are at most one each; the pauses are exactly one each.
		want := []string{"DomainPaused cascade.io", "Paused box0@cascade.io", "Paused box1@cascade.io", "Paused box2@cascade.io"}
		warnings := map[string]int{}
		announced := func() []string {
			var got []string
			clear(warnings)
			for _, m := range sink.messages() {
				for _, l := range noticeLine.FindAllStringSubmatch(m, -1) {
					if l[1] == string(bgv1.NotifyWarning) {
						warnings[l[2]]++
						continue
					}
					got = append(got, l[1]+" "+l[2])
				}
			}
			sort.Strings(got)
			return got
		}
		Eventually(announced).Should(Equal(want), "each transition announced exactly once")
		Consistently(announced).Should(Equal(want))
		for mailbox, n := range warnings {
			Expect(n).To(Equal(1), "Warning of %s announced %d times", mailbox, n)
		}
		msgs := sink.messages()
		Expect(len(msgs)).To(BeNumerically("<", len(want)), "a burst is grouped")
		Expect(len(sink.seen)).To(Equal(len(msgs)+1), "the failed first message was retried, once")
		Expect(strings.Join(msgs, "\n")).To(ContainSubstring("2 bounces in the last 0 sends (pause at 2/2)"))

		for _, m := range sink.seen {
			for _, secret := range []string{f.Key, f.Secret, urlToken, "someone@client.com", "someone@yahoo.com", "@example.org"} {
				Expect(m).NotTo(ContainSubstring(secret))
			}
		}

		By("the policy reports the deliveries")
		Eventually(func(g Gomega) []bgv1.NotificationStatus {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(f.Policy), f.Policy)).To(Succeed())
			return f.Policy.Status.Notifications
		}).Should(ConsistOf(And(HaveField("Type", bgv1.NotificationSlack), HaveField("Delivered", int64(len(msgs))),
			HaveField("Failed", int64(0)))))
		Expect(tenant.Condition(f.Policy, bgv1.ConditionReady)(Default)).To(HaveField("Status", metav1.ConditionTrue))
	})

	It("make the policy not Ready when the URL Secret is missing, naming it, not its content", func() {
		f := newFixture(bgv1.ModeObserve, func(s *bgv1.ProtectionPolicySpec) {
			s.Notifications = []bgv1.NotificationTarget{{Type: bgv1.NotificationWebhook,
				URLSecretRef: bgv1.SecretKeySelector{Name: "hooks", Key: "url"}}}
		})
		Eventually(tenant.Condition(f.Policy, bgv1.ConditionReady)).Should(And(HaveField("Status", metav1.ConditionFalse),
			HaveField("Reason", "SecretNotFound"),
			HaveField("Message", `Secret "hooks" for the notification URL (notifications[0]) not found`)))
		Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "hooks", Namespace: f.NS},
			StringData: map[string]string{"url": "https://hooks.example.net/bounceguard"}})).To(Succeed())
		Eventually(tenant.Condition(f.Policy, bgv1.ConditionReady)).Should(HaveField("Status", metav1.ConditionTrue))
	})
})
