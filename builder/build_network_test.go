package builder_test

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/strata-build/strata/builder"
	"github.com/strata-build/strata/executor"
	"github.com/strata-build/strata/llb"
)

// hostServer serves "hello-from-host" on 0.0.0.0 and returns its port and
// a non-loopback address of this machine ("" if it has none).
func hostServer(t *testing.T) (port, external string) {
	t.Helper()
	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("hello-from-host"))
	})}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ip, ok := a.(*net.IPNet); ok && ip.IP.To4() != nil && !ip.IP.IsLoopback() {
			external = ip.IP.String()
			break
		}
	}
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), external
}

func TestNetworkNoneAndHost(t *testing.T) {
	e := newEnv(t)
	port, ext := hostServer(t)
	probe := func(out, host string) string {
		return `(wget -q -O - http://` + host + `:` + port + `/ || echo unreachable) > ` + out
	}
	df := "FROM busybox\n" +
		"RUN --network=host " + probe("/host-lo", "127.0.0.1") + "\n" +
		"RUN --network=none " + probe("/none-lo", "127.0.0.1") + "\n"
	want := map[string]string{"/host-lo": "hello-from-host", "/none-lo": "unreachable\n"}
	if ext != "" {
		df += "RUN --network=none " + probe("/none-ext", ext) + "\n"
		want["/none-ext"] = "unreachable\n"
	}
	img := e.buildImage(map[string]string{"Dockerfile": df}, builder.Options{})
	for p, w := range want {
		if got := fileData(img, p); got != w {
			t.Errorf("%s = %q, want %q", p, got, w)
		}
	}

	// The build's --network applies to steps without their own.
	df = "FROM busybox\nRUN " + probe("/build-host", "127.0.0.1") + "\nRUN --network=none " + probe("/step-none", "127.0.0.1") + "\n"
	img = e.buildImage(map[string]string{"Dockerfile": df}, builder.Options{Network: llb.NetHost})
	want = map[string]string{"/build-host": "hello-from-host", "/step-none": "unreachable\n"}
	for p, w := range want {
		if got := fileData(img, p); got != w {
			t.Errorf("--network host: %s = %q, want %q", p, got, w)
		}
	}
	df = "FROM busybox\nRUN " + probe("/build-none", "127.0.0.1") + "\n"
	img = e.buildImage(map[string]string{"Dockerfile": df}, builder.Options{Network: llb.NetNone})
	if got := fileData(img, "/build-none"); got != "unreachable\n" {
		t.Errorf("--network none: /build-none = %q", got)
	}
}

func TestAddHost(t *testing.T) {
	e := newEnv(t)
	img := e.buildImage(map[string]string{"Dockerfile": `FROM busybox
RUN grep -E 'myhost|other' /etc/hosts > /hosts
`}, builder.Options{ExtraHosts: []executor.HostIP{{Host: "myhost", IP: "10.1.2.3"}, {Host: "other", IP: "fd00::1"}}})
	got := fileData(img, "/hosts")
	for _, w := range [][2]string{{"10.1.2.3", "myhost"}, {"fd00::1", "other"}} {
		found := false
		for _, l := range strings.Split(got, "\n") {
			f := strings.Fields(l)
			if len(f) >= 2 && f[0] == w[0] && f[1] == w[1] {
				found = true
			}
		}
		if !found {
			t.Errorf("/etc/hosts lacks %s %s:\n%s", w[0], w[1], got)
		}
	}
	assertNoPaths(t, img, "/etc/hosts")
}

func TestSecurityInsecureNeedsAllow(t *testing.T) {
	e := newEnv(t)
	files := map[string]string{"Dockerfile": `FROM busybox
RUN grep CapEff /proc/self/status > /caps
RUN --security=insecure grep CapEff /proc/self/status > /caps-insecure
`}
	err := e.buildError(files, builder.Options{})
	if !strings.Contains(err.Error(), "--allow security.insecure") || !strings.Contains(err.Error(), "Dockerfile:3") {
		t.Errorf("error %q does not say insecure needs --allow on line 3", err)
	}
	img := e.buildImage(files, builder.Options{AllowInsecure: true})
	def, ins := fileData(img, "/caps"), fileData(img, "/caps-insecure")
	if def == "" || ins == "" || def == ins {
		t.Errorf("capabilities: sandboxed %q, insecure %q; want them to differ", def, ins)
	}
	// A cached insecure step is refused too.
	err = e.buildError(files, builder.Options{})
	if !strings.Contains(err.Error(), "--allow security.insecure") {
		t.Errorf("cached insecure step: error %q", err)
	}
}
