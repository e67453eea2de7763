// Package envtest_test runs hack/setup-envtest.sh against a stand-in for the envtest release index and
// archives (the shapes controller-runtime's setup-envtest reads), with tiny fake binaries, in a scratch
// assets directory: the download path, every reason to fall back to the build, and the warm path. No test
// builds anything: BOUNCEGUARD_ENVTEST_NO_BUILD=1 makes the build step report "would build" and stop.
package envtest_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// k8sVersion is the version hack/setup-envtest.sh pins (K8S_VERSION).
const k8sVersion = "1.37.2"

// downloadedEtcd is the etcd version the stand-in archive brings (not the one the build pins).
const downloadedEtcd = "3.6.9"

// platform is the os-arch that setup-envtest, compiled for this machine, asks for.
var platform = runtime.GOOS + "-" + runtime.GOARCH

// fakeAPIServer is a kube-apiserver that only knows --version.
func fakeAPIServer(version string) string {
	return fmt.Sprintf("#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'Kubernetes v%s'; exit 0; fi\necho 'fake kube-apiserver' >&2\nexit 1\n", version)
}

// fakeEtcd is an etcd that prints what etcd --version prints.
const fakeEtcd = "#!/bin/sh\necho 'etcd Version: " + downloadedEtcd + "'\necho 'Git SHA: 0000000'\necho 'Go Version: go1.26.8'\necho 'Go OS/Arch: linux/amd64'\n"

const fakeKubectl = "#!/bin/sh\necho 'fake kubectl'\n"

// envtestArchive is a .tar.gz laid out as controller-tools' envtest archives are: the binaries under
// controller-tools/envtest/, with the directory entries first.
func envtestArchive(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, dir := range []string{"controller-tools/", "controller-tools/envtest/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"etcd", "kube-apiserver", "kubectl"} {
		body, ok := files[name]
		if !ok {
			continue
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: "controller-tools/envtest/" + name, Mode: 0o755, Size: int64(len(body))}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// goodArchive is what the real archive holds, in miniature.
func goodArchive(t *testing.T) []byte {
	t.Helper()
	return envtestArchive(t, map[string]string{"kube-apiserver": fakeAPIServer(k8sVersion), "etcd": fakeEtcd, "kubectl": fakeKubectl})
}

func sha512Hex(b []byte) string {
	sum := sha512.Sum512(b)
	return hex.EncodeToString(sum[:])
}

// standIn serves a release index shaped like controller-tools' envtest-releases.yaml (releases → archive
// name → hash, a hex SHA-512, and selfLink) and the archives it links to, under the paths of GitHub's
// release downloads, and counts every request.
type standIn struct {
	version       string // the release the index lists (default k8sVersion)
	archive       []byte // what the archive's selfLink serves
	hash          string // the hash the index lists (default: the archive's)
	indexStatus   int    // answer the index with this status instead
	archiveStatus int    // answer the archive with this status instead
	hang          bool   // never answer the index

	requests atomic.Int64
}

func (s *standIn) start(t *testing.T) string {
	t.Helper()
	if s.version == "" {
		s.version = k8sVersion
	}
	if s.hash == "" {
		s.hash = sha512Hex(s.archive)
	}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	return srv.URL + "/envtest-releases.yaml"
}

func (s *standIn) serve(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	archivePath := fmt.Sprintf("/releases/download/envtest-v%[1]s/envtest-v%[1]s-%[2]s.tar.gz", s.version, platform)
	switch {
	case r.URL.Path == "/envtest-releases.yaml" && s.hang:
		select {
		case <-r.Context().Done():
		case <-time.After(time.Minute):
		}
	case r.URL.Path == "/envtest-releases.yaml" && s.indexStatus != 0:
		http.Error(w, "stand-in", s.indexStatus)
	case r.URL.Path == "/envtest-releases.yaml":
		// Another platform and an older release too, as in the real index: setup-envtest must pick its own.
		fmt.Fprintf(w, `releases:
  v1.30.0:
    envtest-v1.30.0-%[4]s.tar.gz:
      hash: %[3]s
      selfLink: %[1]s/releases/download/envtest-v1.30.0/envtest-v1.30.0-%[4]s.tar.gz
  v%[2]s:
    envtest-v%[2]s-windows-amd64.tar.gz:
      hash: %[3]s
      selfLink: %[1]s/releases/download/envtest-v%[2]s/envtest-v%[2]s-windows-amd64.tar.gz
    envtest-v%[2]s-%[4]s.tar.gz:
      hash: %[3]s
      selfLink: %[1]s%[5]s
`, "http://"+r.Host, s.version, s.hash, platform, archivePath)
	case r.URL.Path == archivePath && s.archiveStatus != 0:
		http.Error(w, "stand-in", s.archiveStatus)
	case r.URL.Path == archivePath:
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(s.archive)
	default:
		http.NotFound(w, r)
	}
}

// repoRoot is the repository this package is in.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

var compileTool sync.Once

// compileSetupEnvtest compiles the setup-envtest Go tool once, before the parallel tests all ask for it.
func compileSetupEnvtest(t *testing.T) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("hack/setup-envtest.sh is a bash script for Linux and macOS")
	}
	compileTool.Do(func() {
		cmd := exec.Command("go", "tool", "-modfile=hack/tools/go.mod", "-n", "setup-envtest")
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("compiling setup-envtest: %v\n%s", err, out)
		}
	})
}

// result is what one run of the script did.
type result struct {
	stdout, stderr string
	err            error
}

// run runs hack/setup-envtest.sh --print with its assets in assets and the given extra environment. The
// build is always off (BOUNCEGUARD_ENVTEST_NO_BUILD=1), and XDG_DATA_HOME points into the scratch
// directory too, so that nothing can reach the real cache.
func run(t *testing.T, assets string, env ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(repoRoot(t), "hack", "setup-envtest.sh"), "--print")
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "BOUNCEGUARD_ENVTEST_") || strings.HasPrefix(name, "ENVTEST_") ||
			strings.HasPrefix(name, "KUBEBUILDER_ASSETS") || name == "XDG_DATA_HOME" {
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	cmd.Env = append(cmd.Env,
		"KUBEBUILDER_ASSETS_DIR="+assets,
		"XDG_DATA_HOME="+filepath.Join(filepath.Dir(assets), "xdg"),
		"BOUNCEGUARD_ENVTEST_NO_BUILD=1")
	cmd.Env = append(cmd.Env, env...)
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	t.Logf("hack/setup-envtest.sh (err: %v):\n%s", err, stderr.String())
	return result{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// scratchAssets is an assets directory in setup-envtest's layout under a fresh temporary directory.
func scratchAssets(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	// Runs before TempDir's removal: a store setup-envtest left read-only must not fail the cleanup.
	t.Cleanup(func() {
		_ = filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
			if err == nil && info.IsDir() {
				_ = os.Chmod(path, 0o755)
			}
			return nil
		})
	})
	return filepath.Join(dir, "k8s", k8sVersion+"-"+platform)
}

func mustContain(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
}

func mustNotContain(t *testing.T, out string, unwanted ...string) {
	t.Helper()
	for _, u := range unwanted {
		if strings.Contains(out, u) {
			t.Errorf("stderr has %q", u)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// noStaging fails when the download left its staging store behind.
func noStaging(t *testing.T, assets string) {
	t.Helper()
	left, err := filepath.Glob(filepath.Join(assets, ".download.*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("staging directories left in the assets directory: %v", left)
	}
}

// The download path: setup-envtest fetches the archive from the index, the script checks and installs
// kube-apiserver, etcd and kubectl and says so. A second run finds them cached, the downloaded etcd
// included (it is not the version the build pins), and makes no request at all.
func TestSetupEnvtestDownloads(t *testing.T) {
	compileSetupEnvtest(t)
	s := &standIn{archive: goodArchive(t)}
	index := s.start(t)
	assets := scratchAssets(t)

	r := run(t, assets, "BOUNCEGUARD_ENVTEST_INDEX="+index)
	if r.err != nil {
		t.Fatalf("the download path failed: %v", r.err)
	}
	if strings.TrimSpace(r.stdout) != assets {
		t.Errorf("--print printed %q, want %q", r.stdout, assets)
	}
	mustContain(t, r.stderr,
		"downloading envtest v"+k8sVersion+" with setup-envtest (index: "+index,
		"downloaded envtest-v"+k8sVersion+"-"+platform+".tar.gz (kube-apiserver v"+k8sVersion+", etcd v"+downloadedEtcd+"; SHA-512 checked)",
		"installed kube-apiserver and etcd in "+assets)
	mustNotContain(t, r.stderr, "download failed", "build")
	for name, want := range map[string]string{"kube-apiserver": fakeAPIServer(k8sVersion), "etcd": fakeEtcd, "kubectl": fakeKubectl} {
		if got := readFile(t, filepath.Join(assets, name)); got != want {
			t.Errorf("%s installed as %q, want %q", name, got, want)
		}
	}
	if got := strings.TrimSpace(readFile(t, filepath.Join(assets, "etcd.downloaded-version"))); got != downloadedEtcd {
		t.Errorf("etcd.downloaded-version is %q, want %q", got, downloadedEtcd)
	}
	noStaging(t, assets)
	if s.requests.Load() == 0 {
		t.Fatal("the stand-in index saw no request")
	}

	before := s.requests.Load()
	r = run(t, assets, "BOUNCEGUARD_ENVTEST_INDEX="+index)
	if r.err != nil {
		t.Fatalf("the warm run failed: %v", r.err)
	}
	mustContain(t, r.stderr,
		"kube-apiserver v"+k8sVersion+" cached in "+assets,
		"etcd v"+downloadedEtcd+" (from the envtest download) cached in "+assets)
	mustNotContain(t, r.stderr, "downloading", "downloaded envtest", "build")
	if got := s.requests.Load() - before; got != 0 {
		t.Errorf("the warm run made %d requests, want none", got)
	}
}

// With kube-apiserver cached and etcd missing, the download installs etcd alone and leaves the cached
// kube-apiserver as it was.
func TestSetupEnvtestDownloadsOnlyWhatIsMissing(t *testing.T) {
	compileSetupEnvtest(t)
	s := &standIn{archive: goodArchive(t)}
	index := s.start(t)
	assets := scratchAssets(t)
	if err := os.MkdirAll(assets, 0o755); err != nil {
		t.Fatal(err)
	}
	cached := fakeAPIServer(k8sVersion) + "# built here\n"
	if err := os.WriteFile(filepath.Join(assets, "kube-apiserver"), []byte(cached), 0o755); err != nil {
		t.Fatal(err)
	}

	r := run(t, assets, "BOUNCEGUARD_ENVTEST_INDEX="+index)
	if r.err != nil {
		t.Fatalf("the download path failed: %v", r.err)
	}
	mustContain(t, r.stderr, "kube-apiserver v"+k8sVersion+" cached in "+assets, "installed etcd in "+assets)
	if got := readFile(t, filepath.Join(assets, "kube-apiserver")); got != cached {
		t.Errorf("the cached kube-apiserver was replaced by %q", got)
	}
	if got := readFile(t, filepath.Join(assets, "etcd")); got != fakeEtcd {
		t.Errorf("etcd installed as %q", got)
	}
}

// Every way the download can fail makes the script say why and fall back to the build (which
// BOUNCEGUARD_ENVTEST_NO_BUILD=1 reports as "would build" instead of running), with the assets directory
// left without binaries and without the staging store.
func TestSetupEnvtestFallsBackToTheBuild(t *testing.T) {
	compileSetupEnvtest(t)
	good := goodArchive(t)
	notGzip := []byte("<html>not an archive</html>")
	cases := []struct {
		name   string
		s      *standIn
		index  func(t *testing.T) string // the index URL, when not the stand-in's
		env    []string
		reason string
		more   []string // more lines stderr must have
	}{
		{name: "index unreachable", index: closedPort,
			reason: "setup-envtest: unable to fetch hash for requested version: unable to perform request to get index"},
		{name: "index 404", s: &standIn{archive: good, indexStatus: http.StatusNotFound},
			reason: `setup-envtest: unable to fetch hash for requested version: unable to get index -- got status "404 Not Found"`},
		{name: "index 503 (a proxy that serves Go modules only)", s: &standIn{archive: good, indexStatus: http.StatusServiceUnavailable},
			reason: `setup-envtest: unable to fetch hash for requested version: unable to get index -- got status "503 Service Unavailable"`},
		{name: "version not in the index", s: &standIn{archive: good, version: "1.37.1"},
			reason: "setup-envtest: unable to fetch hash for requested version: unable to find archive for"},
		{name: "archive 404", s: &standIn{archive: good, archiveStatus: http.StatusNotFound},
			reason: `setup-envtest: unable to download requested version: unable fetch envtest-v` + k8sVersion + "-" + platform + `.tar.gz`},
		{name: "corrupt archive (checksum mismatch)", s: &standIn{archive: good, hash: sha512Hex([]byte("another archive"))},
			reason: "setup-envtest: unable to download requested version: checksum mismatch for envtest-v" + k8sVersion + "-" + platform + ".tar.gz"},
		{name: "corrupt archive (not gzip, hash matching)", s: &standIn{archive: notGzip},
			reason: "setup-envtest: unable to store version to disk: unable to start un-gz-ing entry archive"},
		{name: "wrong kube-apiserver version", s: &standIn{archive: envtestArchive(t, map[string]string{"kube-apiserver": fakeAPIServer("1.37.1"), "etcd": fakeEtcd})},
			reason: "the downloaded kube-apiserver reports 'Kubernetes v1.37.1', not 'Kubernetes v" + k8sVersion + "'"},
		{name: "no etcd in the archive", s: &standIn{archive: envtestArchive(t, map[string]string{"kube-apiserver": fakeAPIServer(k8sVersion)})},
			reason: "the downloaded archive has no etcd that runs and reports its version"},
		{name: "no answer in time", s: &standIn{archive: good, hang: true},
			env:    []string{"BOUNCEGUARD_ENVTEST_DOWNLOAD_TIMEOUT=3", "BOUNCEGUARD_ENVTEST_HEARTBEAT=1"},
			reason: "no answer within 3s (BOUNCEGUARD_ENVTEST_DOWNLOAD_TIMEOUT)",
			more:   []string{"still downloading envtest v" + k8sVersion + " ("}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var index string
			if tc.index != nil {
				index = tc.index(t)
			} else {
				index = tc.s.start(t)
			}
			assets := scratchAssets(t)
			r := run(t, assets, append([]string{"BOUNCEGUARD_ENVTEST_INDEX=" + index}, tc.env...)...)
			if r.err == nil {
				t.Fatal("the script succeeded without a download and without a build")
			}
			mustContain(t, r.stderr,
				"downloading envtest v"+k8sVersion,
				"download failed: "+tc.reason,
				"falling back to building kube-apiserver and etcd from Go modules",
				"would build kube-apiserver from Go modules now; not building (BOUNCEGUARD_ENVTEST_NO_BUILD=1)",
				"would build etcd from Go modules now; not building (BOUNCEGUARD_ENVTEST_NO_BUILD=1)")
			mustContain(t, r.stderr, tc.more...)
			mustNotContain(t, r.stderr, "downloaded envtest", "building kube-apiserver from Go modules (first run")
			if r.stdout != "" {
				t.Errorf("--print printed %q for an incomplete assets directory", r.stdout)
			}
			for _, name := range []string{"kube-apiserver", "etcd", "etcd.downloaded-version"} {
				if _, err := os.Stat(filepath.Join(assets, name)); err == nil {
					t.Errorf("%s is in the assets directory after a failed download", name)
				}
			}
			noStaging(t, assets)
		})
	}
}

// BOUNCEGUARD_ENVTEST_BUILD=1 goes straight to the build: the index sees no request.
func TestSetupEnvtestBuildSkipsTheDownload(t *testing.T) {
	compileSetupEnvtest(t)
	s := &standIn{archive: goodArchive(t)}
	index := s.start(t)
	r := run(t, scratchAssets(t), "BOUNCEGUARD_ENVTEST_INDEX="+index, "BOUNCEGUARD_ENVTEST_BUILD=1")
	if r.err == nil {
		t.Fatal("the script succeeded without a build")
	}
	mustContain(t, r.stderr,
		"not downloading: BOUNCEGUARD_ENVTEST_BUILD=1 asks for kube-apiserver and etcd to be built from Go modules",
		"would build kube-apiserver from Go modules now",
		"would build etcd from Go modules now")
	mustNotContain(t, r.stderr, "downloading envtest")
	if got := s.requests.Load(); got != 0 {
		t.Errorf("the index saw %d requests, want none", got)
	}
}

// closedPort is an index URL on a local port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr + "/envtest-releases.yaml"
}

// fakeGo stands in for `go build`: it logs how it was called and writes, at -o, a binary reporting the
// version the build would stamp (kube-apiserver: -X ...gitVersion; etcd: the pinned 3.7.3). `go tool`
// goes to the real go, for setup-envtest.
const fakeGo = `#!/bin/sh
if [ "$1" = tool ]; then exec "$REAL_GO" "$@"; fi
if [ "$1" != build ]; then echo "fake go: unexpected go $*" >&2; exit 2; fi
echo "dir=$(pwd) CGO_ENABLED=$CGO_ENABLED GOFLAGS=$GOFLAGS args=$*" >>"$FAKE_GO_LOG"
sleep "${FAKE_GO_SLEEP:-0}"
out= ldflags= prev= pkg=
for a in "$@"; do
  case "$prev" in -o) out=$a ;; -ldflags) ldflags=$a ;; esac
  prev=$a pkg=$a
done
case "$pkg" in
k8s.io/kubernetes/cmd/kube-apiserver)
  v=$(printf '%s\n' "$ldflags" | sed -n 's/.*gitVersion=\([^ ]*\).*/\1/p')
  printf '#!/bin/sh\necho "Kubernetes %s"\n' "$v" >"$out" ;;
go.etcd.io/etcd/server/v3) printf '#!/bin/sh\necho "etcd Version: 3.7.3"\n' >"$out" ;;
*) echo "fake go: unexpected package $pkg" >&2; exit 2 ;;
esac
chmod +x "$out"
`

// When the download fails, the script builds both binaries from Go modules, each in its wrapper module
// with the version stamped, with a heartbeat while it builds; a `go` on PATH stands in for the compiler.
// A downloaded etcd replaced by the build loses its recorded version.
func TestSetupEnvtestBuildsWhenTheDownloadFails(t *testing.T) {
	compileSetupEnvtest(t)
	realGo, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "go"), []byte(fakeGo), 0o755); err != nil {
		t.Fatal(err)
	}
	goLog := filepath.Join(bin, "go.log")
	s := &standIn{archive: goodArchive(t), indexStatus: http.StatusNotFound}
	index := s.start(t)
	assets := scratchAssets(t)
	if err := os.MkdirAll(assets, 0o755); err != nil {
		t.Fatal(err)
	}
	// A downloaded etcd that no longer runs: it is rebuilt, and its recorded version goes.
	if err := os.WriteFile(filepath.Join(assets, "etcd.downloaded-version"), []byte(downloadedEtcd+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	r := run(t, assets,
		"BOUNCEGUARD_ENVTEST_INDEX="+index,
		"BOUNCEGUARD_ENVTEST_NO_BUILD=",
		"BOUNCEGUARD_ENVTEST_HEARTBEAT=1",
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"REAL_GO="+realGo, "FAKE_GO_LOG="+goLog, "FAKE_GO_SLEEP=2")
	if r.err != nil {
		t.Fatalf("the build path failed: %v", r.err)
	}
	if strings.TrimSpace(r.stdout) != assets {
		t.Errorf("--print printed %q, want %q", r.stdout, assets)
	}
	mustContain(t, r.stderr,
		`download failed: setup-envtest: unable to fetch hash for requested version: unable to get index -- got status "404 Not Found"`,
		"falling back to building kube-apiserver and etcd from Go modules",
		"building kube-apiserver from Go modules (first run only; this takes a while) ...",
		"still building kube-apiserver (",
		"built kube-apiserver in ",
		"building etcd from Go modules",
		"built etcd in ")
	calls := strings.Split(strings.TrimSpace(readFile(t, goLog)), "\n")
	if len(calls) != 2 {
		t.Fatalf("go build ran %d times, want 2:\n%s", len(calls), strings.Join(calls, "\n"))
	}
	root := repoRoot(t)
	for i, want := range []string{
		"dir=" + filepath.Join(root, "hack", "envtest", "kube-apiserver") + " CGO_ENABLED=0 GOFLAGS=-mod=mod args=build -trimpath -ldflags -s -w -X k8s.io/component-base/version.gitVersion=v" + k8sVersion + " -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37 -X k8s.io/component-base/version.gitTreeState=clean -o " + filepath.Join(assets, "kube-apiserver.tmp") + " k8s.io/kubernetes/cmd/kube-apiserver",
		"dir=" + filepath.Join(root, "hack", "envtest", "etcd") + " CGO_ENABLED=0 GOFLAGS=-mod=mod args=build -trimpath -ldflags -s -w -o " + filepath.Join(assets, "etcd.tmp") + " go.etcd.io/etcd/server/v3",
	} {
		if calls[i] != want {
			t.Errorf("go build call %d:\n got %s\nwant %s", i, calls[i], want)
		}
	}
	if got := readFile(t, filepath.Join(assets, "kube-apiserver")); !strings.Contains(got, "Kubernetes v"+k8sVersion) {
		t.Errorf("the built kube-apiserver is %q", got)
	}
	if _, err := os.Stat(filepath.Join(assets, "etcd.downloaded-version")); err == nil {
		t.Error("etcd.downloaded-version is still there after etcd was built")
	}

	r = run(t, assets, "BOUNCEGUARD_ENVTEST_INDEX="+index)
	if r.err != nil {
		t.Fatalf("the warm run failed: %v", r.err)
	}
	mustContain(t, r.stderr, "kube-apiserver v"+k8sVersion+" cached in ", "etcd v3.7.3 cached in ")
}
