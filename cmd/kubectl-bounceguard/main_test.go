package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/testenv"
	"github.com/bounceguard/bounceguard/internal/whatif"
)

// eventLines are --log-events lines: 100 sends then 4 hard bounces on ann@acme.io, among other log lines.
func eventLines() string {
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	var b strings.Builder
	b.WriteString(`{"level":"info","ts":1,"logger":"setup","msg":"starting the manager"}` + "\n")
	for i := range 104 {
		typ := "send"
		if i >= 100 {
			typ = "bounce"
		}
		fmt.Fprintf(&b, `{"level":"info","logger":"receiver.events","msg":"event recorded","sender":"ann@acme.io","domain":"acme.io","type":%q,"at":%q,"lead":"lead:00aa11bb22cc"}`+"\n",
			typ, t0.Add(time.Duration(i)*time.Minute).Format(time.RFC3339))
	}
	return b.String()
}

func writeFile(t *testing.T, name, content string) string {
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// The same four bounces under the default policy only warn; under a stricter one they pause: the
// effect of a threshold change on recorded traffic, from standard input.
func TestWhatif(t *testing.T) {
	strict := writeFile(t, "strict.yaml", `apiVersion: bounceguard.io/v1alpha1
kind: ProtectionPolicy
metadata: {name: default, namespace: acme}
spec:
  mailbox:
    pause: {bounces: 4, withinSends: 100}
`)
	lax := writeFile(t, "lax.yaml", "apiVersion: bounceguard.io/v1alpha1\nkind: ProtectionPolicy\nmetadata: {name: default}\n")

	var out bytes.Buffer
	if err := run([]string{"whatif", "-f", strict, "--events", "-"}, strings.NewReader(eventLines()), &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"TIME", "2026-12-01T10:43:00Z  Mailbox  ann@acme.io  Warning  Paused   BounceThreshold",
		"104 events over 1 mailboxes and 1 domains: 2 warned, 1 paused"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}

	out.Reset()
	events := writeFile(t, "events.log", eventLines())
	if err := run([]string{"whatif", "-f", lax, "--events", events, "-o", "json"}, nil, &out); err != nil {
		t.Fatal(err)
	}
	var res whatif.Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if res.Events != 104 || res.Final["ann@acme.io"] != bgv1.HealthWarning {
		t.Fatalf("the default policy: %+v", res)
	}
	for _, f := range res.Findings {
		if f.To == bgv1.HealthPaused {
			t.Fatalf("paused under the default policy (5/100) after 4 bounces: %+v", f)
		}
	}

	for _, bad := range [][]string{{"whatif", "--events", "-"}, {"whatif", "-f", lax, "--events", "-", "-o", "xml"}, {"nope"}} {
		if err := run(bad, strings.NewReader(eventLines()), &out); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
	if err := run([]string{"whatif", "-f", lax, "--events", "-"}, strings.NewReader("not an event\n"), &out); err == nil ||
		!strings.Contains(err.Error(), "--log-events") {
		t.Errorf("no events: %v", err)
	}
}

// resume and hold set the annotations the Mailbox reconciler acts on, against a real API server.
func TestResumeAndHold(t *testing.T) {
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	user, err := env.AddUser(envtest.User{Name: "plugin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", writeFile(t, "kubeconfig", string(kubeconfig)))
	ctx := context.Background()
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "acme"}}); err != nil {
		t.Fatal(err)
	}
	mb := &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: "ann-acme-io", Namespace: "acme"}, Spec: bgv1.MailboxSpec{Email: "ann@acme.io"}}
	if err := env.Client.Create(ctx, mb); err != nil {
		t.Fatal(err)
	}
	annotations := func() map[string]string {
		var got bgv1.Mailbox
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(mb), &got); err != nil {
			t.Fatal(err)
		}
		return got.Annotations
	}
	var out bytes.Buffer
	if err := run([]string{"hold", "ann-acme-io", "-n", "acme"}, nil, &out); err != nil {
		t.Fatal(err)
	}
	if a := annotations(); !strings.HasPrefix(a[bgv1.AnnotationHold], "held with kubectl bounceguard") {
		t.Fatalf("annotations after hold: %v", a)
	}
	if err := run([]string{"resume", "-n", "acme", "ann-acme-io"}, nil, &out); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"hold", "--release", "ann-acme-io", "-n", "acme"}, nil, &out); err != nil {
		t.Fatal(err)
	}
	a := annotations()
	if _, held := a[bgv1.AnnotationHold]; held {
		t.Fatalf("hold not released: %v", a)
	}
	if _, err := time.Parse(time.RFC3339, a[bgv1.AnnotationResume]); err != nil {
		t.Fatalf("resume annotation %q: %v", a[bgv1.AnnotationResume], err)
	}
	if !strings.Contains(out.String(), "mailbox acme/ann-acme-io: bounceguard.io/hold removed") {
		t.Fatalf("output:\n%s", out.String())
	}
	if err := run([]string{"resume", "nobody", "-n", "acme"}, nil, &out); err == nil {
		t.Fatal("resuming a Mailbox that does not exist succeeded")
	}

	// status: the policy's line, and the paused mailbox with its evidence and cooldown end.
	out.Reset()
	if err := run([]string{"status", "-n", "acme"}, nil, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "every mailbox and domain is Healthy") {
		t.Fatalf("status of a healthy namespace:\n%s", out.String())
	}
	if err := env.Client.Create(ctx, &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "acme"},
		Spec: bgv1.ProtectionPolicySpec{Mode: bgv1.ModeSuggest}}); err != nil {
		t.Fatal(err)
	}
	var cur bgv1.Mailbox
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(mb), &cur); err != nil {
		t.Fatal(err)
	}
	resumeAt := metav1.NewTime(time.Date(2026, 12, 2, 11, 0, 0, 0, time.UTC))
	cur.Status.Health, cur.Status.ResumeAt = bgv1.HealthPaused, &resumeAt
	warned := metav1.NewTime(time.Date(2026, 12, 2, 9, 12, 40, 0, time.UTC))
	cur.Status.History = []bgv1.HealthTransition{
		{Time: warned, From: bgv1.HealthHealthy, To: bgv1.HealthWarning, Reason: "WarningThreshold", Evidence: "3 bounces in the last 60 sends (warning at 3/60)"},
		{Time: warned, From: bgv1.HealthWarning, To: bgv1.HealthPaused, Reason: "BounceThreshold", Evidence: "5 bounces in the last 100 sends (pause at 5/100)"}}
	if err := env.Client.Status().Update(ctx, &cur); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run([]string{"status", "-n", "acme"}, nil, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`acme/default\s+Suggest\s+0`,
		`Mailbox\s+acme/ann@acme.io\s+Paused\s+no\s+2026-12-02T11:00:00Z\s+5 bounces in the last 100 sends \(pause at 5/100\)`,
		`acme/ann@acme.io\s+2026-12-02T09:12:40Z\s+Healthy -> Warning\s+WarningThreshold\s+3 bounces in the last 60 sends`,
		`acme/ann@acme.io\s+2026-12-02T09:12:40Z\s+Warning -> Paused\s+BounceThreshold\s+5 bounces`} {
		if !regexp.MustCompile(want).MatchString(out.String()) {
			t.Errorf("status lacks %s:\n%s", want, out.String())
		}
	}
}
