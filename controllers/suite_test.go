package controllers_test

import (
	"context"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/testenv"
	"github.com/bounceguard/bounceguard/internal/testenv/tenant"
)

var (
	env *testenv.Env
	k8s client.Client
	ctx context.Context
	// logs captures everything the manager logs, to check that no secret reaches a log line.
	logs = tenant.Logs
)

// fixture is one test's namespace, policy and stand-in Smartlead (tenant.Fixture), with the steps the
// specs of this suite add to it.
type fixture struct{ *tenant.Fixture }

// newFixture is tenant.New: a namespace with an API key Secret, a stand-in Smartlead that accepts only
// that key, and a policy named "default" with second-scale cooldowns (2s, then 4s, capped at 8s) and 5
// clean sends.
func newFixture(mode bgv1.Mode, tweak ...func(*bgv1.ProtectionPolicySpec)) *fixture {
	return &fixture{tenant.New(mode, tweak...)}
}

func TestControllers(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Controllers suite")
}

// The suite's manager (tenant.Start) runs with exactly the generated ClusterRole's rights: every test
// also proves it is enough.
var _ = BeforeSuite(func() {
	tenant.Start()
	env, k8s, ctx = tenant.Env, tenant.Client, tenant.Ctx
})

var _ = AfterSuite(tenant.Stop)
