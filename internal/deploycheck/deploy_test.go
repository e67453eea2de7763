// Package deploycheck_test renders the two ways of installing bounceguard — the Helm chart in dist/chart
// (with the Helm Go library) and config/default (with the kustomize Go library) — and has a real API
// server check every object they produce with a server-side dry-run, the Prometheus Operator's CRDs
// (ServiceMonitor, PrometheusRule) installed from its Go module.
package deploycheck_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/bounceguard/bounceguard/internal/testenv"
)

// prometheusOperator is the module whose CRDs the ServiceMonitor and PrometheusRule are checked against.
const prometheusOperator = "github.com/prometheus-operator/prometheus-operator@v0.85.0"

// monitoringCRDs downloads the Prometheus Operator module (through the Go module proxy, into the module
// cache) and returns its ServiceMonitor and PrometheusRule CRD manifests.
func monitoringCRDs(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("go", "mod", "download", "-json", prometheusOperator).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s %s", err, ee.Stderr, out)
		}
		t.Fatalf("downloading %s: %v", prometheusOperator, err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("go mod download answered %s (%v)", out, err)
	}
	dir := filepath.Join(mod.Dir, "example", "prometheus-operator-crd")
	return []string{filepath.Join(dir, "monitoring.coreos.com_servicemonitors.yaml"), filepath.Join(dir, "monitoring.coreos.com_prometheusrules.yaml")}
}

// decode splits YAML documents into objects, skipping empty ones.
func decode(t *testing.T, data []byte) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatal(err)
		}
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(doc, &obj.Object); err != nil {
			t.Fatalf("%v in:\n%s", err, doc)
		}
		if len(obj.Object) > 0 {
			objs = append(objs, obj)
		}
	}
}

// renderChart renders dist/chart as `helm install bounceguard dist/chart -n bounceguard` would, with
// values, CRDs first.
func renderChart(t *testing.T, values map[string]any) []*unstructured.Unstructured {
	t.Helper()
	chrt, err := loader.Load(filepath.Join(testenv.RepoRoot(), "dist", "chart"))
	if err != nil {
		t.Fatal(err)
	}
	vals, err := util.ToRenderValues(chrt, values, common.ReleaseOptions{Name: "bounceguard", Namespace: "bounceguard", IsInstall: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	files, err := engine.Render(chrt, vals)
	if err != nil {
		t.Fatalf("rendering the chart: %v", err)
	}
	var objs []*unstructured.Unstructured
	for _, crd := range chrt.CRDObjects() {
		objs = append(objs, decode(t, crd.File.Data)...)
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if strings.HasSuffix(name, ".yaml") {
			objs = append(objs, decode(t, []byte(files[name]))...)
		}
	}
	return objs
}

// renderKustomize renders a kustomization directory as `kubectl apply -k` would.
func renderKustomize(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	data, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, data)
}

// dryRun applies every object server-side with dryRun=All; Namespaces are created for real first, since
// namespaced objects can only be checked inside an existing one.
func dryRun(t *testing.T, env *testenv.Env, objs []*unstructured.Unstructured, namespaces ...string) {
	t.Helper()
	ctx := context.Background()
	for _, ns := range namespaces {
		if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); client.IgnoreAlreadyExists(err) != nil {
			t.Fatal(err)
		}
	}
	for _, obj := range objs {
		err := env.Client.Patch(ctx, obj.DeepCopy(), client.Apply, client.FieldOwner("deploycheck"), client.ForceOwnership, client.DryRunAll) //nolint:staticcheck // unstructured objects have no apply configuration
		if err != nil {
			t.Errorf("%s %s/%s: %v", obj.GetKind(), obj.GetNamespace(), obj.GetName(), err)
		}
	}
}

func kinds(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetKind())
	}
	sort.Strings(out)
	return slices.Compact(out)
}

func find(t *testing.T, objs []*unstructured.Unstructured, kind, nameSuffix string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && strings.HasSuffix(o.GetName(), nameSuffix) {
			return o
		}
	}
	t.Fatalf("no %s named *%s", kind, nameSuffix)
	return nil
}

// The chart (defaults, and with every option on) and config/default (with config/prometheus) pass a
// server-side dry-run, install the same kinds of objects, and give the manager the same permissions
// and alert rules.
func TestChartAndKustomizePassServerSideDryRun(t *testing.T) {
	env, err := testenv.StartWith(monitoringCRDs(t)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })

	all := map[string]any{
		"metrics":  map[string]any{"serviceMonitor": map[string]any{"enabled": true}, "prometheusRule": map[string]any{"enabled": true}},
		"receiver": map[string]any{"ingress": map[string]any{"enabled": true, "className": "nginx"}},
		"manager":  map[string]any{"logEvents": true, "watchLabelSelector": "bounceguard.io/shard=a"},
		"networkPolicy": map[string]any{"from": []any{map[string]any{"namespaceSelector": map[string]any{
			"matchLabels": map[string]any{"kubernetes.io/metadata.name": "ingress-nginx"}}}}},
	}
	chartDefaults, chartAll := renderChart(t, nil), renderChart(t, all)
	kustomized := renderKustomize(t, filepath.Join(testenv.RepoRoot(), "config", "default"))
	monitoring := renderKustomize(t, filepath.Join(testenv.RepoRoot(), "config", "prometheus"))

	t.Run("dry-run", func(t *testing.T) {
		dryRun(t, env, chartDefaults, "bounceguard")
		dryRun(t, env, chartAll, "bounceguard")
		dryRun(t, env, kustomized, "bounceguard-system")
		dryRun(t, env, monitoring, "system")
	})

	t.Run("same kinds", func(t *testing.T) {
		fromChart := kinds(chartAll)
		fromKustomize := kinds(append(slices.Clone(kustomized), monitoring...))
		// The chart leaves the namespace to `helm install -n`; config/default has no Ingress (yours is yours).
		fromChart = slices.DeleteFunc(fromChart, func(k string) bool { return k == "Ingress" })
		fromKustomize = slices.DeleteFunc(fromKustomize, func(k string) bool { return k == "Namespace" })
		if !slices.Equal(fromChart, fromKustomize) {
			t.Fatalf("the chart installs %v, config/default %v", fromChart, fromKustomize)
		}
		for _, k := range []string{"Deployment", "PodDisruptionBudget", "NetworkPolicy", "ServiceMonitor", "PrometheusRule", "CustomResourceDefinition"} {
			if !slices.Contains(fromChart, k) {
				t.Errorf("no %s", k)
			}
		}
		if slices.Contains(kinds(chartDefaults), "Ingress") || slices.Contains(kinds(chartDefaults), "ServiceMonitor") {
			t.Errorf("the defaults install the optional objects: %v", kinds(chartDefaults))
		}
	})

	t.Run("same permissions and rules", func(t *testing.T) {
		chartRole, kRole := find(t, chartAll, "ClusterRole", "-manager"), find(t, kustomized, "ClusterRole", "manager-role")
		if !equality.Semantic.DeepEqual(chartRole.Object["rules"], kRole.Object["rules"]) {
			t.Errorf("the chart's manager rules differ from config/rbac/role.yaml:\n%v\n%v", chartRole.Object["rules"], kRole.Object["rules"])
		}
		chartRules, kRules := find(t, chartAll, "PrometheusRule", "-alerts"), find(t, monitoring, "PrometheusRule", "alerts")
		if !equality.Semantic.DeepEqual(chartRules.Object["spec"], kRules.Object["spec"]) {
			t.Error("the chart's alert rules differ from config/prometheus/rules.yaml")
		}
		args := func(o *unstructured.Unstructured) []string {
			containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			var out []string
			for _, a := range containers[0].(map[string]any)["args"].([]any) {
				out = append(out, strings.SplitN(a.(string), "=", 2)[0])
			}
			return out
		}
		chartArgs := args(find(t, chartDefaults, "Deployment", "bounceguard"))
		for _, a := range args(find(t, kustomized, "Deployment", "controller-manager")) {
			if !slices.Contains(chartArgs, a) {
				t.Errorf("the chart's manager lacks %s (it has %v)", a, chartArgs)
			}
		}
		if all := args(find(t, chartAll, "Deployment", "bounceguard")); !slices.Contains(all, "--log-events") || !slices.Contains(all, "--watch-label-selector") {
			t.Errorf("values do not reach the flags: %v", all)
		}
	})
}
