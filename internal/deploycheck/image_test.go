package deploycheck_test

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"github.com/bounceguard/bounceguard/internal/testenv"
)

// There is no Docker engine where the tests run, so TestImageBuildsFromItsContext plays the builder stage
// of the Dockerfile itself: it selects the build context as Docker does (the repository minus the
// .dockerignore patterns, matched with Docker's own pattern matcher), carries out the stage's ARG,
// WORKDIR, COPY and RUN instructions in a scratch directory, and checks that the file the final stage
// copies out of the builder exists. A package the context leaves out, or a COPY that misses one, fails
// here as it would fail `docker build`.

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper-cased: FROM, ARG, COPY, ...
	args string
	line int
}

// parseDockerfile reads the instructions of a Dockerfile, skipping comments and joining "\" continuations.
func parseDockerfile(r io.Reader) ([]instruction, error) {
	var out []instruction
	sc := bufio.NewScanner(r)
	n, start, acc := 0, 0, ""
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if acc == "" && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if acc == "" {
			start = n
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			acc += cont + " "
			continue
		}
		acc += line
		cmd, args, _ := strings.Cut(acc, " ")
		out = append(out, instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start})
		acc = ""
	}
	return out, sc.Err()
}

// stages splits the instructions at each FROM; the FROM itself heads its stage.
func stages(ins []instruction) [][]instruction {
	var out [][]instruction
	for _, in := range ins {
		if in.cmd == "FROM" || len(out) == 0 {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], in)
	}
	return out
}

// buildContext is the repository as Docker sends it: the files no .dockerignore pattern excludes.
type buildContext struct {
	root    string
	matcher *patternmatcher.PatternMatcher
}

func newBuildContext(root string) (*buildContext, error) {
	var patterns []string
	f, err := os.Open(filepath.Join(root, ".dockerignore"))
	if err == nil {
		patterns, err = ignorefile.ReadAll(f)
		_ = f.Close()
	}
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	m, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, err
	}
	return &buildContext{root: root, matcher: m}, nil
}

// excluded reports whether rel (slash-separated, relative to the context) stays out of the context.
func (c *buildContext) excluded(rel string) (bool, error) {
	if rel == "." || rel == ".dockerignore" || rel == "Dockerfile" {
		return false, nil
	}
	// As the Docker CLI selects the context: a file is out when it or a parent directory matches.
	return c.matcher.MatchesOrParentMatches(rel)
}

// copyInto copies the context's src (a file or directory, relative to the context) to dst, leaving out
// what .dockerignore excludes.
func (c *buildContext) copyInto(src, dst string, dstIsDir bool) error {
	src = path.Clean(src)
	info, err := os.Stat(filepath.Join(c.root, filepath.FromSlash(src)))
	if err != nil {
		return fmt.Errorf("COPY %s: not in the build context: %w", src, err)
	}
	if !info.IsDir() {
		skip, err := c.excluded(src)
		if err != nil {
			return fmt.Errorf("COPY %s: matching .dockerignore: %w", src, err)
		}
		if skip {
			return fmt.Errorf("COPY %s: excluded by .dockerignore", src)
		}
		target := dst
		if dstIsDir {
			target = filepath.Join(dst, path.Base(src))
		}
		return copyFile(filepath.Join(c.root, filepath.FromSlash(src)), target)
	}
	base := filepath.Join(c.root, filepath.FromSlash(src))
	return filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(c.root, p)
		if err != nil {
			return err
		}
		skip, err := c.excluded(filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		if skip {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		inner, err := filepath.Rel(base, p)
		if err != nil {
			return err
		}
		return copyFile(p, filepath.Join(dst, inner))
	})
}

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	return os.WriteFile(to, data, 0o644)
}

var argRef = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`)

func TestImageBuildsFromItsContext(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the manager")
	}
	root := testenv.RepoRoot()
	f, err := os.Open(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	ins, err := parseDockerfile(f)
	_ = f.Close()
	if err != nil {
		t.Fatal(err)
	}
	all := stages(ins)
	if len(all) < 2 {
		t.Fatalf("the Dockerfile has %d stages; want a builder and a runtime stage", len(all))
	}
	ctx, err := newBuildContext(root)
	if err != nil {
		t.Fatal(err)
	}

	// The builder stage, in a scratch directory standing for its file system.
	fsRoot := t.TempDir()
	builder := all[0]
	builderName := ""
	if fields := strings.Fields(builder[0].args); len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
		builderName = fields[2]
	}
	args := map[string]string{"TARGETOS": runtime.GOOS, "TARGETARCH": runtime.GOARCH}
	workdir := "/"
	for _, in := range builder[1:] {
		expanded := argRef.ReplaceAllStringFunc(in.args, func(m string) string {
			if v, ok := args[argRef.FindStringSubmatch(m)[1]]; ok {
				return v
			}
			return m
		})
		switch in.cmd {
		case "ARG":
			name, def, _ := strings.Cut(in.args, "=")
			if _, set := args[name]; !set {
				args[name] = def
			}
		case "WORKDIR":
			workdir = path.Join(workdir, expanded)
			if err := os.MkdirAll(filepath.Join(fsRoot, workdir), 0o755); err != nil {
				t.Fatal(err)
			}
		case "COPY":
			fields := strings.Fields(expanded)
			for len(fields) > 0 && strings.HasPrefix(fields[0], "--") {
				if strings.HasPrefix(fields[0], "--from") {
					t.Fatalf("Dockerfile line %d: COPY --from in the builder stage is not understood by this test", in.line)
				}
				fields = fields[1:]
			}
			if len(fields) < 2 {
				t.Fatalf("Dockerfile line %d: COPY needs a source and a destination", in.line)
			}
			dst := fields[len(fields)-1]
			dstIsDir := strings.HasSuffix(dst, "/") || dst == "." || len(fields) > 2
			target := filepath.Join(fsRoot, filepath.FromSlash(path.Join(workdir, dst)))
			for _, src := range fields[:len(fields)-1] {
				if err := ctx.copyInto(src, target, dstIsDir); err != nil {
					t.Fatalf("Dockerfile line %d: %v", in.line, err)
				}
			}
		case "RUN":
			cmd := exec.Command("sh", "-c", expanded)
			cmd.Dir = filepath.Join(fsRoot, workdir)
			// The module cache and build cache of the machine stand in for the image's; GOFLAGS from the
			// caller (e.g. -race) do not belong to the image build.
			cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly", "GOWORK=off")
			for k, v := range args {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("Dockerfile line %d: RUN %s failed in exactly the Docker build context: %v\n%s", in.line, in.args, err, out)
			}
		case "ENV", "LABEL":
			// Not needed by the build here.
		default:
			t.Fatalf("Dockerfile line %d: %s in the builder stage is not understood by this test", in.line, in.cmd)
		}
	}

	// The runtime stage takes the binary from the builder, runs it as non-root.
	var copied, user string
	for _, in := range all[len(all)-1] {
		switch in.cmd {
		case "COPY":
			fields := strings.Fields(in.args)
			if len(fields) == 3 && fields[0] == "--from="+builderName {
				copied = fields[1]
			}
		case "USER":
			user = in.args
		}
	}
	if copied == "" {
		t.Fatalf("the runtime stage copies nothing from the builder stage %q", builderName)
	}
	info, err := os.Stat(filepath.Join(fsRoot, filepath.FromSlash(copied)))
	if err != nil || info.Size() == 0 {
		t.Fatalf("the builder stage left no %s: %v", copied, err)
	}
	if uid, _, _ := strings.Cut(user, ":"); uid == "" || uid == "0" || uid == "root" {
		t.Errorf("the image runs as %q; want a non-root user", user)
	}
}

// TestBuildContextLeavesOutWhatItShould checks the .dockerignore selection itself: the manager's sources
// go in; docs, manifests, build outputs and the git history stay out.
func TestBuildContextLeavesOutWhatItShould(t *testing.T) {
	ctx, err := newBuildContext(testenv.RepoRoot())
	if err != nil {
		t.Fatal(err)
	}
	for rel, want := range map[string]bool{
		"main.go": false, "go.mod": false, "go.sum": false, "api/v1alpha1/mailbox_types.go": false,
		"controllers/mailbox_controller.go": false, "internal/testenv/testenv.go": false,
		".git/HEAD": true, "bin/manager": true, "docs/security.md": true, "config/default/kustomization.yaml": true,
		"controllers/mailbox_controller_test.go": true, "README.md": true, "hack/dev/main.go": true,
	} {
		got, err := ctx.excluded(rel)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s: excluded = %v, want %v", rel, got, want)
		}
	}
}
