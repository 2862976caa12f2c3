//go:build linux

package network

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("veth pairs and nftables need root")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("the tests read the tables with nft")
	}
}

// gone fails t if anything of l is left on the host.
func gone(t *testing.T, l *Link) {
	t.Helper()
	if linkExists(l.Name) {
		t.Errorf("link %s left on the host", l.Name)
	}
	if out, err := exec.Command("nft", "list", "table", "ip", l.Name).CombinedOutput(); err == nil {
		t.Errorf("table %s left: %s", l.Name, out)
	}
	if out, _ := exec.Command("iptables", "-w", "-t", "nat", "-S", "POSTROUTING").Output(); strings.Contains(string(out), l.Name) {
		t.Errorf("iptables rule for %s left: %s", l.Name, out)
	}
}

func TestBlock(t *testing.T) {
	l := block(0x1a2)
	if l.Name != "strata01a2" || l.Subnet.String() != "10.213.6.136/30" || l.Gateway.String() != "10.213.6.137" || l.Addr.String() != "10.213.6.138" {
		t.Errorf("block 0x1a2: %+v", l)
	}
	if last := block(blocks - 1); last.Addr.String() != "10.213.255.254" {
		t.Errorf("last block: %+v", last)
	}
}

func TestAttachConcurrent(t *testing.T) {
	requireRoot(t)
	links := make([]*Link, 4)
	nss := make([]*Namespace, len(links))
	var g errgroup.Group
	for i := range links {
		ns, err := NewNamespace()
		if err != nil {
			t.Fatal(err)
		}
		nss[i] = ns
		g.Go(func() (err error) {
			links[i], err = Attach(ns.Tid)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		for _, ns := range nss {
			ns.Close()
		}
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, l := range links {
		if seen[l.Subnet.String()] {
			t.Errorf("subnet %s given twice", l.Subnet)
		}
		seen[l.Subnet.String()] = true
		ifc, err := net.InterfaceByName(l.Name)
		if err != nil {
			t.Fatal(err)
		}
		addrs, _ := ifc.Addrs()
		if len(addrs) == 0 || addrs[0].String() != l.Gateway.String()+"/30" {
			t.Errorf("%s: addresses %v, want %s/30", l.Name, addrs, l.Gateway)
		}
	}
	wantSharedTable(t)
	for i, l := range links {
		if err := l.Detach(); err != nil {
			t.Error(err)
		}
		detached(t, l)
		// The pair goes with the namespace.
		waitGone(t, l, nss[i].Close)
		gone(t, l)
	}
}

// detached fails t unless l's host end is down and has no address.
func detached(t *testing.T, l *Link) {
	t.Helper()
	ifc, err := net.InterfaceByIndex(l.index)
	if err != nil {
		return // gone already
	}
	addrs, _ := ifc.Addrs()
	if ifc.Flags&net.FlagUp != 0 || len(addrs) != 0 {
		t.Errorf("%s after detach: flags %v, addresses %v", l.Name, ifc.Flags, addrs)
	}
}

// waitGone runs end, which ends the namespace of l's peer, and waits for
// the kernel to report the host end deleted.
func waitGone(t *testing.T, l *Link, end func()) {
	t.Helper()
	updates, done := make(chan netlink.LinkUpdate), make(chan struct{})
	defer close(done)
	if err := netlink.LinkSubscribe(updates, done); err != nil {
		t.Fatal(err)
	}
	end()
	if _, err := netlink.LinkByIndex(l.index); err != nil {
		return
	}
	timeout := time.After(time.Minute)
	for {
		select {
		case u := <-updates:
			if int(u.Index) == l.index && u.Header.Type == unix.RTM_DELLINK {
				return
			}
		case <-timeout:
			t.Fatalf("%s outlived its namespace by a minute", l.Name)
		}
	}
}

func TestTakenBlockIsSkipped(t *testing.T) {
	requireRoot(t)
	ns, err := NewNamespace()
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	l, err := create(ns.Tid, 7)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Delete()
	if _, err := create(ns.Tid, 7); err != errTaken {
		t.Errorf("second create of block 7: got %v, want errTaken", err)
	}
}

func TestDetachAfterNamespaceDied(t *testing.T) {
	requireRoot(t)
	ns, err := NewNamespace()
	if err != nil {
		t.Fatal(err)
	}
	l, err := Attach(ns.Tid)
	if err != nil {
		ns.Close()
		t.Fatal(err)
	}
	// The namespace dies with its thread, and the pair with it, as when
	// the sandbox ends before Detach; nothing but the shared table stays.
	waitGone(t, l, ns.Close)
	if err := l.Detach(); err != nil {
		t.Fatal(err)
	}
	gone(t, l)
	wantSharedTable(t)
}

// wantSharedTable fails t unless the shared table holds exactly its rules,
// as nft prints them.
func wantSharedTable(t *testing.T) {
	t.Helper()
	out, err := exec.Command("nft", "list", "table", "ip", Prefix).CombinedOutput()
	if err != nil {
		t.Fatalf("nft list table ip %s: %s %v", Prefix, out, err)
	}
	var rules []string
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "table") && !strings.HasPrefix(line, "chain") &&
			!strings.HasPrefix(line, "type") && line != "}" {
			rules = append(rules, line)
		}
	}
	want := []string{
		`ip saddr 10.213.0.0/16 oifname != "strata*" masquerade comment "strata v1"`,
		`iifname "strata*" accept comment "strata v1"`,
		`oifname "strata*" ct state established,related accept comment "strata v1"`,
	}
	if got := strings.Join(rules, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("table %s: rules\n%s\nwant\n%s", Prefix, got, strings.Join(want, "\n"))
	}
}

func TestSharedTableIsIdempotent(t *testing.T) {
	requireRoot(t)
	var g errgroup.Group
	for range 4 {
		g.Go(ensureTable)
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	wantSharedTable(t)
	// A table changed by hand is written again.
	if out, err := exec.Command("nft", "add", "rule", "ip", Prefix, "forward", "accept").CombinedOutput(); err != nil {
		t.Fatalf("%s %v", out, err)
	}
	if err := ensureTable(); err != nil {
		t.Fatal(err)
	}
	wantSharedTable(t)
}

func TestSweep(t *testing.T) {
	requireRoot(t)
	ns, err := NewNamespace()
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	live, err := create(ns.Tid, 0x3ffe)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Delete()
	dead := block(0x3fff).Name
	for _, name := range []string{dead, live.Name} {
		script := "table ip " + name + " {\n chain postrouting {\n  type nat hook postrouting priority srcnat; policy accept;\n }\n}\n"
		cmd := exec.Command("nft", "-f", "-")
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make table %s: %s %v", name, out, err)
		}
	}
	defer exec.Command("nft", "delete", "table", "ip", live.Name).Run()
	if err := ensureTable(); err != nil {
		t.Fatal(err)
	}
	if err := Sweep(); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("nft", "list", "table", "ip", dead).CombinedOutput(); err == nil {
		t.Errorf("table %s of a gone link survived the sweep: %s", dead, out)
	}
	for _, name := range []string{live.Name, Prefix} {
		if out, err := exec.Command("nft", "list", "table", "ip", name).CombinedOutput(); err != nil {
			t.Errorf("table %s swept: %s %v", name, out, err)
		}
	}
}

func TestIptablesRule(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("iptables is not installed")
	}
	count := func() int {
		out, err := output("iptables", "-w", "-t", "nat", "-S", "POSTROUTING")
		if err != nil {
			t.Fatal(err)
		}
		return strings.Count(out, "-s 10.213.0.0/16 ! -o strata+ -m comment --comment "+Prefix+" -j MASQUERADE")
	}
	had := count()
	del := append([]string{"-w", "-t", "nat", "-D", "POSTROUTING"}, iptablesRule()...)
	defer func() {
		for range count() - had {
			_ = run("", "iptables", del...)
		}
	}()
	for range 2 {
		if err := ensureIptablesRule(); err != nil {
			t.Fatal(err)
		}
		if n := count(); n != 1 {
			t.Fatalf("%d shared rules, want 1", n)
		}
	}
	// Copies from concurrent appends are deleted.
	if err := run("", "iptables", append([]string{"-w", "-t", "nat", "-A", "POSTROUTING"}, iptablesRule()...)...); err != nil {
		t.Fatal(err)
	}
	if err := ensureIptablesRule(); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 1 {
		t.Errorf("%d shared rules after a duplicate, want 1", n)
	}
	// A rule of a gone link is swept, the shared one stays.
	gone := []string{"-w", "-t", "nat", "-A", "POSTROUTING", "-s", "10.213.255.252/30", "-m", "comment", "--comment", block(0x3fff).Name, "-j", "MASQUERADE"}
	if err := run("", "iptables", gone...); err != nil {
		t.Fatal(err)
	}
	if err := Sweep(); err != nil {
		t.Fatal(err)
	}
	if out, _ := output("iptables", "-w", "-t", "nat", "-S", "POSTROUTING"); strings.Contains(out, block(0x3fff).Name) {
		t.Errorf("rule of a gone link survived the sweep: %s", out)
	}
	if n := count(); n != 1 {
		t.Errorf("%d shared rules after the sweep, want 1", n)
	}
}
