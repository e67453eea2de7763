# bounceguard — see README.md. `make help` lists the targets.

IMG ?= bounceguard:latest
GO ?= go
CONTROLLER_GEN ?= $(GO) tool controller-gen
# golangci-lint is a tool of its own module (hack/tools/go.mod), so that its dependencies stay out of ours.
GOLANGCI_LINT ?= $(GO) tool -modfile=hack/tools/go.mod golangci-lint
# Where hack/setup-envtest.sh caches the control plane, downloaded or built (the setup-envtest default).
ENVTEST_K8S_VERSION ?= 1.37.2
ENVTEST_ASSETS ?= $(or $(XDG_DATA_HOME),$(HOME)/.local/share)/kubebuilder-envtest/k8s/$(ENVTEST_K8S_VERSION)-linux-amd64
# Extra flags for `go test`, e.g. GOTEST_FLAGS=-v.
GOTEST_FLAGS ?=

.DEFAULT_GOAL := help
SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*?##/ { printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: ## Generate CRDs and RBAC from the API types and markers (and copy them, with the alert rules, into the Helm chart).
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd:allowDangerousTypes=false paths="./..." output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	@cp config/crd/bases/*.yaml dist/chart/crds/
	@cp config/rbac/role.yaml dist/chart/files/manager-role.yaml
	@cp config/prometheus/rules.yaml dist/chart/files/alerts.yaml

.PHONY: generate
generate: ## Generate deepcopy code.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./..."

.PHONY: fmt
fmt: ## go fmt.
	$(GO) fmt ./...

.PHONY: vet
vet: ## go vet.
	$(GO) vet ./...

.PHONY: envtest
envtest: ## Provide the envtest control plane (kube-apiserver, etcd), once: downloaded with setup-envtest (seconds), or built from Go modules when that fails (~17 min).
	@hack/setup-envtest.sh

.PHONY: lint
lint: ## golangci-lint (.golangci.yml), built from hack/tools/go.mod.
	$(GOLANGCI_LINT) run ./...

.PHONY: verify
verify: ## Fail when generated files (CRDs, RBAC, deepcopy, the chart's copies) are stale, code is not gofmt-ed, go vet or golangci-lint complains.
	@hack/verify-generated.sh
	@unformatted="$$(gofmt -l .)"; \
	  if [[ -n "$$unformatted" ]]; then echo "not gofmt-ed (run make fmt):"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GOLANGCI_LINT) run ./...

.PHONY: test
test: verify envtest ## Run every test, envtest included (after verify: stale generated files fail, they are not regenerated).
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" $(GO) test ./... -race -count=1 -timeout 30m $(GOTEST_FLAGS)

.PHONY: bench
bench: envtest ## Run the benchmarks recorded in docs/benchmarks.md.
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" $(GO) test ./test/system/ -run '^$$' -bench 'BenchmarkReceiver|BenchmarkGate|BenchmarkTimeToPause|BenchmarkHostileTraffic' -benchtime 1x -timeout 30m
	$(GO) test ./controllers/ -run '^$$' -bench BenchmarkPolicyReconcile -benchmem

.PHONY: e2e
e2e: envtest ## Fleet-scale figures (docs/benchmarks.md): MAILBOXES (10000) over DOMAINS (200), the manager as its own process.
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" $(GO) run ./hack/fleetscale -mailboxes $(or $(MAILBOXES),10000) -domains $(or $(DOMAINS),200)

.PHONY: faults
faults: envtest ## The long versions of the fault tests (docs/reliability.md): Smartlead down for 60 s while 20 mailboxes cross.
	BOUNCEGUARD_SMARTLEAD_OUTAGE=60s KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" $(GO) test ./test/system/ -run TestSystem -count=1 -timeout 20m -ginkgo.focus "A Smartlead outage" -ginkgo.v

.PHONY: fuzz
fuzz: ## Fuzz the webhook parser and handler, the bounce classification, and the Smartlead client's answer parsing (FUZZTIME=10m each by default).
	$(GO) test ./webhookreceiver/ -run '^$$' -fuzz '^FuzzParseEvent$$' -fuzztime $(or $(FUZZTIME),10m)
	$(GO) test ./webhookreceiver/ -run '^$$' -fuzz '^FuzzWebhookHandler$$' -fuzztime $(or $(FUZZTIME),10m) -fuzzminimizetime 10x
	$(GO) test ./webhookreceiver/ -run '^$$' -fuzz '^FuzzClassificationIgnoresIDs$$' -fuzztime $(or $(FUZZTIME),10m)
	$(GO) test ./internal/smartlead/ -run '^$$' -fuzz '^FuzzAnswers$$' -fuzztime $(or $(FUZZTIME),10m)

##@ Build and run

.PHONY: build
build: manifests generate fmt vet ## Build the manager binary into bin/.
	$(GO) build -o bin/manager .

.PHONY: run
run: manifests generate fmt vet ## Run the manager against the cluster of the current kubeconfig.
	$(GO) run . --leader-elect=false

.PHONY: dev
dev: manifests generate envtest ## Run everything locally on an embedded control plane, until Ctrl-C.
	@mkdir -p bin && $(GO) build -o bin/dev ./hack/dev
	@# Run the binary itself (not go run, which exits 1 when interrupted): Ctrl-C stops it cleanly, exit 0.
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" bin/dev

.PHONY: docker-build
docker-build: ## Build the container image (needs a Docker engine).
	docker build -t $(IMG) .

##@ Deployment

.PHONY: install
install: manifests ## Install the CRDs into the cluster of the current kubeconfig.
	kubectl apply -k config/crd

.PHONY: uninstall
uninstall: manifests ## Remove the CRDs from the cluster of the current kubeconfig.
	kubectl delete --ignore-not-found -k config/crd

.PHONY: deploy
deploy: manifests ## Deploy the operator (config/default) to the cluster of the current kubeconfig.
	kubectl apply -k config/default

.PHONY: undeploy
undeploy: ## Remove the operator from the cluster of the current kubeconfig.
	kubectl delete --ignore-not-found -k config/default
