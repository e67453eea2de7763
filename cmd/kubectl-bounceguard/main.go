// Command kubectl-bounceguard is bounceguard's kubectl plugin (`go install
// github.com/bounceguard/bounceguard/cmd/kubectl-bounceguard@latest`, then `kubectl bounceguard ...`):
//
//	kubectl bounceguard status [-n NAMESPACE | -A]
//	kubectl bounceguard whatif -f policy.yaml --events FILE|-  [-o table|json|yaml]
//	kubectl bounceguard resume MAILBOX [-n NAMESPACE]
//	kubectl bounceguard hold MAILBOX [-n NAMESPACE] [--release]
//
// whatif replays the lines the manager writes with --log-events through the policy's rules (the same
// tally and state machines) and prints which mailboxes and domains it would have warned or paused, and
// when: `kubectl logs deploy/bounceguard-controller-manager | kubectl bounceguard whatif -f policy.yaml --events -`.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/whatif"
)

const usage = `kubectl bounceguard: bounceguard's kubectl plugin

  status [-n NAMESPACE | -A]
      per policy: mode, mailboxes by health, and every mailbox and domain that is not Healthy, with its
      evidence and when its cooldown ends
  whatif -f POLICY.yaml --events FILE|- [-o table|json|yaml]
      replay recorded events (the manager's --log-events lines) through a policy's rules and print
      which mailboxes and domains it would have warned or paused, and when
  resume MAILBOX [-n NAMESPACE]
      set the bounceguard.io/resume annotation: a paused mailbox starts recovering now
  hold MAILBOX [-n NAMESPACE] [--release]
      set (or remove) the bounceguard.io/hold annotation: the mailbox stays paused until released
`

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kubectl bounceguard:", err)
		os.Exit(1)
	}
}

func run(args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		return nil
	}
	switch args[0] {
	case "whatif":
		return runWhatif(args[1:], stdin, stdout)
	case "resume", "hold":
		return runAnnotate(args[0], args[1:], stdout)
	case "status":
		return runStatus(args[1:], stdout)
	}
	return fmt.Errorf("unknown command %q\n%s", args[0], usage)
}

func runWhatif(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("whatif", flag.ContinueOnError)
	policyFile := fs.String("f", "", "the ProtectionPolicy to try (YAML or JSON)")
	eventsFile := fs.String("events", "", "the recorded events: a file of --log-events lines, or - for standard input")
	output := fs.String("o", "table", "output: table, json or yaml")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *policyFile == "" || *eventsFile == "" {
		return errors.New("whatif needs -f POLICY.yaml and --events FILE|-")
	}
	data, err := os.ReadFile(*policyFile)
	if err != nil {
		return err
	}
	var policy bgv1.ProtectionPolicy
	if err := yaml.UnmarshalStrict(data, &policy); err != nil {
		return fmt.Errorf("reading the policy %s: %w", *policyFile, err)
	}
	in := stdin
	if *eventsFile != "-" {
		f, err := os.Open(*eventsFile)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	events, skipped, err := whatif.ParseLog(in)
	if err != nil {
		return err
	}
	if len(events) == 0 {
		return fmt.Errorf("no recorded events among %d lines (is the manager running with --log-events?)", skipped)
	}
	res := whatif.Replay(&policy, events)
	switch *output {
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	case "yaml":
		out, err := yaml.Marshal(res)
		if err != nil {
			return err
		}
		_, err = stdout.Write(out)
		return err
	case "table":
		return printTable(stdout, res)
	}
	return fmt.Errorf("-o %s: must be table, json or yaml", *output)
}

func printTable(w io.Writer, res whatif.Result) error {
	warned, paused := map[string]bool{}, map[string]bool{}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tKIND\tNAME\tFROM\tTO\tREASON\tEVIDENCE")
	for _, f := range res.Findings {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.At.UTC().Format(time.RFC3339), f.Kind, f.Name, f.From, f.To, f.Reason, f.Evidence)
		switch f.To {
		case bgv1.HealthWarning:
			warned[f.Kind+"/"+f.Name] = true
		case bgv1.HealthPaused:
			paused[f.Kind+"/"+f.Name] = true
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%d events over %d mailboxes and %d domains: %d warned, %d paused (mailboxes and domains).\n",
		res.Events, res.Mailboxes, res.Domains, len(warned), len(paused))
	return err
}

// clientFor returns a client of the kubeconfig's cluster and the namespace to use (the flag's, else the
// context's).
func clientFor(namespace string) (client.Client, string, error) {
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{})
	cfg, err := loader.ClientConfig()
	if err != nil {
		return nil, "", err
	}
	if namespace == "" {
		if namespace, _, err = loader.Namespace(); err != nil {
			return nil, "", err
		}
	}
	scheme := runtime.NewScheme()
	if err := bgv1.AddToScheme(scheme); err != nil {
		return nil, "", err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	return c, namespace, err
}

// runStatus prints each policy's mode and counts, then the mailboxes and domains that are not Healthy.
func runStatus(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	namespace := fs.String("n", "", "the namespace (default: the kubeconfig context's)")
	all := fs.Bool("A", false, "every namespace")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, ns, err := clientFor(*namespace)
	if err != nil {
		return err
	}
	var opts []client.ListOption
	if !*all {
		opts = append(opts, client.InNamespace(ns))
	}
	ctx := context.Background()
	var policies bgv1.ProtectionPolicyList
	var mailboxes bgv1.MailboxList
	var domains bgv1.DomainList
	for _, l := range []client.ObjectList{&policies, &mailboxes, &domains} {
		if err := c.List(ctx, l, opts...); err != nil {
			return err
		}
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POLICY\tMODE\tMAILBOXES\tHEALTHY\tWARNING\tPAUSED\tRECOVERING\tPAUSED IN SMARTLEAD\tREADY")
	for _, p := range policies.Items {
		ready := "Unknown"
		if cond := meta.FindStatusCondition(p.Status.Conditions, bgv1.ConditionReady); cond != nil {
			ready = string(cond.Status)
			if cond.Status != "True" {
				ready += " (" + cond.Reason + ")"
			}
		}
		mode := p.Spec.Mode
		if mode == "" {
			mode = bgv1.ModeObserve
		}
		st := p.Status
		fmt.Fprintf(tw, "%s/%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", p.Namespace, p.Name, mode, st.Mailboxes, st.Healthy,
			st.Warning, st.Paused, st.Recovering, st.PausedMailboxes, ready)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	tw = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tNAME\tHEALTH\tPAUSED IN SMARTLEAD\tRESUME AT\tEVIDENCE")
	rows := 0
	var listed []bgv1.Mailbox
	resumeAt := func(t *metav1.Time) string {
		if t == nil {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	for _, mb := range mailboxes.Items {
		if mb.Status.Health == bgv1.HealthHealthy || mb.Status.Health == "" {
			continue
		}
		paused := "no"
		if cond := meta.FindStatusCondition(mb.Status.Conditions, bgv1.ConditionPaused); cond != nil && cond.Status == "True" {
			paused = "yes (" + string(mb.Status.Smartlead.Action) + ")"
		}
		evidence := mb.Status.Evidence()
		for _, typ := range []string{bgv1.ConditionDrifted, bgv1.ConditionUnmonitored} {
			if cond := meta.FindStatusCondition(mb.Status.Conditions, typ); cond != nil && cond.Status == "True" {
				evidence += " [" + typ + ": " + cond.Message + "]"
			}
		}
		fmt.Fprintf(tw, "Mailbox\t%s/%s\t%s\t%s\t%s\t%s\n", mb.Namespace, mb.Spec.Email, mb.Status.Health, paused,
			resumeAt(mb.Status.ResumeAt), evidence)
		listed = append(listed, mb)
		rows++
	}
	for _, d := range domains.Items {
		if d.Status.Health == bgv1.HealthHealthy || d.Status.Health == "" {
			continue
		}
		fmt.Fprintf(tw, "Domain\t%s/%s\t%s\t%d of %d\t%s\t%s\n", d.Namespace, d.Name, d.Status.Health, d.Status.PausedMailboxes,
			d.Status.Mailboxes, resumeAt(d.Status.ResumeAt), d.Status.HealthMessage)
		rows++
	}
	if rows == 0 {
		_, err := fmt.Fprintln(stdout, "every mailbox and domain is Healthy")
		return err
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return printHistory(stdout, listed)
}

// printHistory lists the recent transitions (status.history) of the mailboxes shown, oldest first.
func printHistory(stdout io.Writer, mailboxes []bgv1.Mailbox) error {
	if len(mailboxes) == 0 {
		return nil
	}
	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MAILBOX\tTIME\tTRANSITION\tREASON\tEVIDENCE")
	for _, mb := range mailboxes {
		for _, h := range mb.Status.History {
			fmt.Fprintf(tw, "%s/%s\t%s\t%s -> %s\t%s\t%s\n", mb.Namespace, mb.Spec.Email, h.Time.UTC().Format(time.RFC3339),
				h.From, h.To, h.Reason, h.Evidence)
		}
	}
	return tw.Flush()
}

// runAnnotate sets bounceguard.io/resume (to the current time, so that each request is new) or
// bounceguard.io/hold on a Mailbox, with a merge patch.
func runAnnotate(verb string, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet(verb, flag.ContinueOnError)
	namespace := fs.String("n", "", "the Mailbox's namespace (default: the kubeconfig context's)")
	release := fs.Bool("release", false, "hold only: remove the hold")
	if err := fs.Parse(reorder(args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%s needs one MAILBOX (the Mailbox's name)", verb)
	}
	c, ns, err := clientFor(*namespace)
	if err != nil {
		return err
	}
	key, value := bgv1.AnnotationResume, any(time.Now().UTC().Format(time.RFC3339))
	if verb == "hold" {
		key, value = bgv1.AnnotationHold, any("held with kubectl bounceguard at "+time.Now().UTC().Format(time.RFC3339))
		if *release {
			value = nil
		}
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{key: value}}})
	if err != nil {
		return err
	}
	mb := &bgv1.Mailbox{}
	mb.Namespace, mb.Name = ns, fs.Arg(0)
	if err := c.Patch(context.Background(), mb, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return err
	}
	done := "set"
	if value == nil {
		done = "removed"
	}
	_, err = fmt.Fprintf(stdout, "mailbox %s/%s: %s %s\n", mb.Namespace, mb.Name, key, done)
	return err
}

// reorder puts flags before the positional argument, so that `resume NAME -n ns` works as kubectl's do.
func reorder(args []string) []string {
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-n" || a == "--n" || a == "-namespace":
			flags = append(flags, a)
			if i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
		case len(a) > 1 && a[0] == '-':
			flags = append(flags, a)
		default:
			rest = append(rest, a)
		}
	}
	return append(flags, rest...)
}
