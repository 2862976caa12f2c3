package dockerfile

import (
	"slices"
	"strings"
	"testing"

	"github.com/strata-build/strata/llb"
)

// runOptionsDockerfile has RUN steps with and without --network, in two
// stages, so the options must reach every ExecOp of the graph.
const runOptionsDockerfile = `FROM busybox AS a
RUN one
FROM busybox
RUN --network=none two
COPY --from=a /x /x
RUN --network=default three
RUN --network=host four
`

// execOps returns the ExecOps of res by their command's last word.
func execOps(t *testing.T, res *Result) map[string]*llb.ExecOp {
	t.Helper()
	def, err := llb.NewDefinition(res.Root)
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]*llb.ExecOp{}
	for _, v := range def.Vertices {
		if e, ok := v.Op.(*llb.ExecOp); ok {
			ops[e.Args[len(e.Args)-1]] = e
		}
	}
	if len(ops) != 4 {
		t.Fatalf("got %d ExecOps, want 4", len(ops))
	}
	return ops
}

// Options.Network is the network of every RUN without its own (or with
// --network=default); a RUN's own none or host stays.
func TestRunOptionsNetwork(t *testing.T) {
	for _, tc := range []struct {
		network llb.NetMode
		want    map[string]llb.NetMode
	}{
		{llb.NetDefault, map[string]llb.NetMode{"one": llb.NetDefault, "two": llb.NetNone, "three": llb.NetDefault, "four": llb.NetHost}},
		{llb.NetHost, map[string]llb.NetMode{"one": llb.NetHost, "two": llb.NetNone, "three": llb.NetHost, "four": llb.NetHost}},
		{llb.NetNone, map[string]llb.NetMode{"one": llb.NetNone, "two": llb.NetNone, "three": llb.NetNone, "four": llb.NetHost}},
	} {
		res, err := convertString(runOptionsDockerfile, func(o *Options) { o.Network = tc.network })
		if err != nil {
			t.Fatal(err)
		}
		for cmd, e := range execOps(t, res) {
			if e.Network != tc.want[cmd] {
				t.Errorf("Network=%q: RUN %s has network %q, want %q", tc.network, cmd, e.Network, tc.want[cmd])
			}
		}
	}
}

// Options.ExtraHosts land in every ExecOp, in order, as "name=ip", each
// ExecOp with its own copy.
func TestRunOptionsExtraHosts(t *testing.T) {
	hosts := []string{"myhost=10.1.2.3", "other=fd00::1"}
	res, err := convertString(runOptionsDockerfile, func(o *Options) { o.ExtraHosts = hosts })
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(hosts)
	hosts[0] = "changed=1.1.1.1" // the graph does not alias the options
	for cmd, e := range execOps(t, res) {
		if !slices.Equal(e.ExtraHosts, want) {
			t.Errorf("RUN %s: ExtraHosts %q, want %q", cmd, e.ExtraHosts, want)
		}
	}

	res, err = convertString(runOptionsDockerfile, nil)
	if err != nil {
		t.Fatal(err)
	}
	for cmd, e := range execOps(t, res) {
		if e.ExtraHosts != nil {
			t.Errorf("RUN %s: ExtraHosts %q without the option", cmd, e.ExtraHosts)
		}
	}
}

// The graph the options give is the one the builder used to make by
// rewriting the converted graph: same digests for the same inputs.
func TestRunOptionsDigestsAsRewritten(t *testing.T) {
	for _, opts := range []Options{
		{},
		{Network: llb.NetHost},
		{Network: llb.NetNone, ExtraHosts: []string{"myhost=10.1.2.3", "other=fd00::1"}},
		{ExtraHosts: []string{"a=1.2.3.4"}},
	} {
		got, err := convertString(runOptionsDockerfile, func(o *Options) { o.Network, o.ExtraHosts = opts.Network, opts.ExtraHosts })
		if err != nil {
			t.Fatal(err)
		}
		plain, err := convertString(runOptionsDockerfile, nil)
		if err != nil {
			t.Fatal(err)
		}
		rewriteRuns(plain.Root, opts.Network, opts.ExtraHosts)
		if g, w := got.Root.Digest(), plain.Root.Digest(); g != w {
			t.Errorf("Network=%q ExtraHosts=%q: digest %s, rewritten graph %s", opts.Network, opts.ExtraHosts, g, w)
		}
	}
}

// rewriteRuns is how the builder applied the options after conversion.
func rewriteRuns(root *llb.Vertex, network llb.NetMode, hosts []string) {
	seen := map[*llb.Vertex]bool{}
	var visit func(v *llb.Vertex)
	visit = func(v *llb.Vertex) {
		if v == nil || seen[v] {
			return
		}
		seen[v] = true
		if e, ok := v.Op.(*llb.ExecOp); ok {
			if e.Network == llb.NetDefault {
				e.Network = network
			}
			e.ExtraHosts = append(e.ExtraHosts, hosts...)
		}
		for _, in := range v.Inputs {
			visit(in)
		}
	}
	visit(root)
}

func TestRunOptionsInvalid(t *testing.T) {
	for _, tc := range []struct {
		opts func(*Options)
		want string
	}{
		{func(o *Options) { o.Network = "bridge" }, `unsupported network mode "bridge"`},
		{func(o *Options) { o.ExtraHosts = []string{"myhost"} }, `invalid extra host "myhost"`},
		{func(o *Options) { o.ExtraHosts = []string{"=10.1.2.3"} }, `invalid extra host "=10.1.2.3"`},
	} {
		_, err := convertString(runOptionsDockerfile, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want %q", err, tc.want)
		}
	}
}
