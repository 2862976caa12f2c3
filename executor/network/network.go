//go:build linux

// Package network gives a sandbox's private network namespace a link to the
// outside, as Docker's and BuildKit's default bridge networks do.
//
// A Link is one veth pair: the host end, named "strata" plus four hex digits,
// stays in the host's network namespace; the other end is made in the
// sandbox's namespace as eth0. The pair gets a /30 from Range: the host end
// holds the first address and is the sandbox's default gateway, eth0 holds
// the second. The four hex digits are the block's index in Range, so the
// host end's name is the lock on the block: creating it fails with EEXIST
// when any other run, in this process or another, holds the block, and
// Attach then picks another at random. Everything is done over netlink from
// this process; no program is run.
//
// Traffic from Range to anything but a link is masqueraded by one nftables
// table named Prefix, shared by all links and all strata processes: Attach
// makes it once (idempotently, in one transaction) and leaves it in place,
// so a run itself only adds and deletes its veth pair. Where nf_tables is
// not usable, one iptables rule commented Prefix does the same. IPv4
// forwarding is switched on.
//
// Detach takes the host end's address and brings it down, which unlinks the
// sandbox at once; the kernel destroys the pair with the sandbox's
// namespace, in the background, once its last process has ended (Delete
// deletes it at once, for a namespace that lives on). A killed process
// thus leaves no link either. Sweep deletes the per-link tables and
// iptables rules of earlier strata versions whose link is gone.
//
//	l, err := network.Attach(pid)   // pid: a process or thread in the sandbox's namespace
//	... run; the sandbox reaches the host at l.Gateway and the outside through it ...
//	err = l.Detach()
//
// Isolation: the sandbox sees only lo and eth0; it cannot reach services the
// host binds to its loopback addresses, but it reaches every address the host
// reaches, the host's own addresses on other interfaces included.
package network

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Range is the private range the /30 blocks are taken from.
var Range = netip.MustParsePrefix("10.213.0.0/16")

// Prefix starts the names of every host end and nftables table.
const Prefix = "strata"

// blocks is the number of /30 blocks in Range.
const blocks = 1 << (32 - 16 - 2)

// attempts bounds how many random blocks Attach tries.
const attempts = 32

// Link is one attached veth pair.
type Link struct {
	// Name names the host end and the masquerade table or rule.
	Name string
	// Subnet is the /30 of the pair.
	Subnet netip.Prefix
	// Gateway is the host end's address; Addr is eth0's.
	Gateway, Addr netip.Addr
	// index is the host end's interface index.
	index int
}

// Attach links the network namespace of pid (a process or a thread id) to
// the host. See the package documentation.
func Attach(pid int) (*Link, error) {
	var l *Link
	var err error
	for range attempts {
		l, err = create(pid, randomBlock())
		if !errors.Is(err, errTaken) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("attach network to pid %d: %w", pid, err)
	}
	if err := l.configure(pid); err != nil {
		_ = l.Delete()
		return nil, fmt.Errorf("attach network to pid %d: %w", pid, err)
	}
	return l, nil
}

// errTaken reports a block in use by another run or by the host.
var errTaken = errors.New("block taken")

func randomBlock() int {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return int(binary.BigEndian.Uint16(b[:])) % blocks
}

// block returns the Link of block i, unattached.
func block(i int) *Link {
	base := Range.Addr().As4()
	n := binary.BigEndian.Uint32(base[:]) + uint32(i)*4
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], n)
	subnet := netip.PrefixFrom(netip.AddrFrom4(a), 30)
	gw := subnet.Addr().Next()
	return &Link{Name: fmt.Sprintf("%s%04x", Prefix, i), Subnet: subnet, Gateway: gw, Addr: gw.Next()}
}

// create makes the veth pair of block i, with its peer in pid's namespace,
// and the host end up with the gateway address.
func create(pid, i int) (*Link, error) {
	l := block(i)
	if overlapsHost(l.Subnet) {
		return nil, errTaken
	}
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open netlink: %w", err)
	}
	defer h.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: l.Name}, PeerName: "eth0", PeerNamespace: netlink.NsPid(pid)}
	if err := h.LinkAdd(veth); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return nil, errTaken
		}
		return nil, fmt.Errorf("add veth pair %s: %w", l.Name, err)
	}
	l.index = veth.Index
	if l.index == 0 {
		_ = h.LinkDel(veth)
		return nil, fmt.Errorf("add veth pair %s: no index", l.Name)
	}
	addr := &netlink.Addr{IPNet: prefixNet(netip.PrefixFrom(l.Gateway, l.Subnet.Bits()))}
	if err := h.AddrAdd(veth, addr); err != nil {
		_ = h.LinkDel(veth)
		return nil, fmt.Errorf("address %s: %w", l.Name, err)
	}
	if err := h.LinkSetUp(veth); err != nil {
		_ = h.LinkDel(veth)
		return nil, fmt.Errorf("bring up %s: %w", l.Name, err)
	}
	return l, nil
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// overlapsHost reports whether subnet overlaps a network of the host's
// interfaces (other than our own links, which the link name guards).
func overlapsHost(subnet netip.Prefix) bool {
	ifs, err := net.Interfaces()
	if err != nil {
		return false
	}
	for _, ifc := range ifs {
		if strings.HasPrefix(ifc.Name, Prefix) {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			p, err := netip.ParsePrefix(ipn.String())
			if err == nil && p.Overlaps(subnet) {
				return true
			}
		}
	}
	return false
}

// configure addresses eth0 inside the namespace, routes through the host
// end, and makes sure of forwarding and masquerading on the host.
func (l *Link) configure(pid int) error {
	if err := enableForwarding(); err != nil {
		return err
	}
	if err := masquerade(); err != nil {
		return err
	}
	h, err := handleAt(pid)
	if err != nil {
		return fmt.Errorf("configure eth0: %w", err)
	}
	defer h.Close()
	eth0, err := h.LinkByName("eth0")
	if err != nil {
		return fmt.Errorf("configure eth0: %w", err)
	}
	addr := &netlink.Addr{IPNet: prefixNet(netip.PrefixFrom(l.Addr, l.Subnet.Bits()))}
	if err := h.AddrAdd(eth0, addr); err != nil {
		return fmt.Errorf("configure eth0: address %s: %w", l.Addr, err)
	}
	if err := h.LinkSetUp(eth0); err != nil {
		return fmt.Errorf("configure eth0: bring up: %w", err)
	}
	route := &netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: l.Gateway.AsSlice()}
	if err := h.RouteAdd(route); err != nil {
		return fmt.Errorf("configure eth0: default route via %s: %w", l.Gateway, err)
	}
	return nil
}

// handleAt opens a netlink socket in pid's network namespace: a socket
// stays in the namespace it was made in, whichever thread uses it.
func handleAt(pid int) (*netlink.Handle, error) {
	var h *netlink.Handle
	err := inNamespace(pid, func() (err error) {
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open netlink in the namespace of pid %d: %w", pid, err)
	}
	return h, nil
}

// Detach unlinks the sandbox from the host at once: the host end loses
// the gateway address (and with it the route to the sandbox) and goes down.
// The pair itself goes with the sandbox's namespace: deleting a link waits
// for the kernel's network-wide grace periods (~20 ms), while the kernel
// frees a dead namespace, and the pair in it, in the background. The host
// end is found by index, not name: a run that gets the block after the pair
// is gone may already hold the name.
func (l *Link) Detach() error {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("detach network %s: open netlink: %w", l.Name, err)
	}
	defer h.Close()
	host := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Index: l.index}}
	err = h.LinkSetDown(host)
	if err == nil {
		err = h.AddrDel(host, &netlink.Addr{IPNet: prefixNet(netip.PrefixFrom(l.Gateway, l.Subnet.Bits()))})
	}
	if err != nil && !errors.Is(err, unix.ENODEV) && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return fmt.Errorf("detach network %s: %w", l.Name, err)
	}
	return nil
}

// Delete deletes the pair now, for a caller whose namespace outlives the
// run; it takes the grace periods Detach avoids.
func (l *Link) Delete() error {
	err := netlink.LinkDel(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Index: l.index}})
	if err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete network %s: %w", l.Name, err)
	}
	return nil
}

// inNamespace runs fn on an OS thread that has joined pid's network
// namespace; programs fn starts inherit the namespace. The thread returns
// to its namespace afterwards: a thread that ended instead would take the
// children it forked for others with it (their parent-death signal), and
// the main thread cannot end at all.
func inNamespace(pid int, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		restore, err := joinNamespace(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		err = fn()
		if restore() == nil {
			runtime.UnlockOSThread()
		} // else the thread stays locked and ends with the goroutine
		errc <- err
	}()
	return <-errc
}

// joinNamespace moves the calling thread into the network namespace at
// path (or into a new one when path is empty); restore moves it back.
func joinNamespace(path string) (restore func() error, err error) {
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open network namespace: %w", err)
	}
	restore = func() error {
		defer unix.Close(orig)
		return unix.Setns(orig, unix.CLONE_NEWNET)
	}
	if path == "" {
		err = unix.Unshare(unix.CLONE_NEWNET)
	} else {
		var fd int
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			err = unix.Setns(fd, unix.CLONE_NEWNET)
			unix.Close(fd)
		}
	}
	if err != nil {
		unix.Close(orig)
		if path == "" {
			return nil, fmt.Errorf("create network namespace: %w", err)
		}
		return nil, fmt.Errorf("join network namespace %s: %w", path, err)
	}
	return restore, nil
}

// output runs a program and returns its standard output.
func output(name string, args ...string) (string, error) {
	var stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %s", name, strings.Join(args, " "), strings.TrimSpace(stderr.String()+" "+err.Error()))
	}
	return string(out), nil
}

// run runs a program with stdin, folding its stderr into the error.
func run(stdin, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("%s %s: %s", name, strings.Join(args, " "), msg)
	}
	return nil
}
