package controllers

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/bounceguard/bounceguard/internal/testenv"
)

// declaredMetrics are the bounceguard_* metric names declared in the repository's Go code (not tests).
func declaredMetrics(t *testing.T) map[string]bool {
	names := map[string]bool{}
	decl := regexp.MustCompile(`Name:\s+"(bounceguard_[a-z_]+)"`)
	err := filepath.WalkDir(testenv.RepoRoot(), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range decl.FindAllStringSubmatch(string(data), -1) {
			names[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// usedMetrics are the bounceguard_* series an expression reads, as metric names (histogram and summary
// suffixes removed).
func usedMetrics(expr string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`bounceguard_[a-z_]+`).FindAllString(expr, -1) {
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			m = strings.TrimSuffix(m, suffix)
		}
		out = append(out, m)
	}
	return out
}

// The alert rules and the dashboard read only metrics the manager exports.
func TestMonitoringUsesRealMetrics(t *testing.T) {
	declared := declaredMetrics(t)
	if len(declared) < 10 {
		t.Fatalf("found only %d declared metrics: %v", len(declared), declared)
	}
	var exprs []string

	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "prometheus", "rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Kind string
		Spec struct {
			Groups []struct {
				Rules []struct {
					Alert, Expr string
				}
			}
		}
	}
	if err := yaml.Unmarshal(data, &rules); err != nil || rules.Kind != "PrometheusRule" {
		t.Fatalf("rules.yaml: %v (kind %q)", err, rules.Kind)
	}
	var alerts []string
	for _, g := range rules.Spec.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			exprs = append(exprs, r.Expr)
		}
	}
	for _, want := range []string{"BounceguardMailboxesPaused", "BounceguardDomainPaused", "BounceguardSmartleadErrors",
		"BounceguardReceiverErrors", "BounceguardTimeToPauseSlow", "BounceguardWebhookSilence"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("no alert %s", want)
		}
	}

	data, err = os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "grafana", "bounceguard-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	if len(dash.Panels) < 8 {
		t.Fatalf("%d panels", len(dash.Panels))
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}

	for _, e := range exprs {
		used := usedMetrics(e)
		if len(used) == 0 {
			t.Errorf("an expression reads no bounceguard metric: %s", e)
		}
		for _, m := range used {
			if !declared[m] {
				t.Errorf("%s is not a metric the manager exports (in %q)", m, e)
			}
		}
	}
}
