//go:build linux

package network

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sync/errgroup"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("veth pairs and nftables need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip (iproute2)")
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
	var g errgroup.Group
	for i := range links {
		ns, err := NewNamespace()
		if err != nil {
			t.Fatal(err)
		}
		defer ns.Close()
		g.Go(func() (err error) {
			links[i], err = Attach(ns.Tid)
			return err
		})
	}
	if err := g.Wait(); err != nil {
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
		if out, err := exec.Command("nft", "list", "table", "ip", l.Name).Output(); err != nil || !strings.Contains(string(out), "ip saddr "+l.Subnet.String()) {
			t.Errorf("table %s: %s %v", l.Name, out, err)
		}
	}
	for _, l := range links {
		if err := l.Detach(); err != nil {
			t.Error(err)
		}
		gone(t, l)
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
	defer l.Detach()
	if _, err := create(ns.Tid, 7); err != errTaken {
		t.Errorf("second create of block 7: got %v, want errTaken", err)
	}
}

func TestSweep(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs nft")
	}
	ns, err := NewNamespace()
	if err != nil {
		t.Fatal(err)
	}
	l, err := Attach(ns.Tid)
	if err != nil {
		t.Fatal(err)
	}
	// The namespace dies with its thread, and the pair with it, as when
	// a process is killed mid-run; the table stays until a sweep.
	ns.Close()
	if err := run("", "ip", "link", "del", l.Name); err != nil && linkExists(l.Name) {
		t.Fatal(err)
	}
	if err := exec.Command("nft", "list", "table", "ip", l.Name).Run(); err != nil {
		t.Fatalf("table %s missing before the sweep: %v", l.Name, err)
	}
	if err := Sweep(); err != nil {
		t.Fatal(err)
	}
	gone(t, l)
}
