//go:build linux

// Package network gives a sandbox's private network namespace a link to the
// outside, as Docker's and BuildKit's default bridge networks do.
//
// A Link is one veth pair: the host end, named "strata" plus four hex digits,
// stays in the host's network namespace; the other end is moved into the
// sandbox's namespace and renamed eth0. The pair gets a /30 from Range: the
// host end holds the first address and is the sandbox's default gateway, eth0
// holds the second. The four hex digits are the block's index in Range, so
// the host end's name is the lock on the block: creating it fails with
// "File exists" when any other run, in this process or another, holds the
// block, and Attach then picks another at random. Traffic from the block to
// anything but the host end is masqueraded by an nftables table of the same
// name (or, without nft, an iptables rule commented with the name), and IPv4
// forwarding is switched on.
//
// Detach removes the table (or rule) and then the host end, which takes
// eth0 with it. A process that dies in between leaves a table whose link is
// gone (the kernel destroys a veth pair with the namespace of either end);
// Sweep deletes such tables.
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
	"os"
	"os/exec"
	"runtime"
	"strings"

	"golang.org/x/sync/errgroup"
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
	// firewall is "nft" or "iptables".
	firewall string
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
		_ = l.Detach()
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
	script := fmt.Sprintf("link add %s type veth peer name eth0 netns %d\naddr add %s dev %s\nlink set %s up\n",
		l.Name, pid, netip.PrefixFrom(l.Gateway, 30), l.Name, l.Name)
	if err := run(script, "ip", "-batch", "-"); err != nil {
		if strings.Contains(err.Error(), "File exists") {
			if !strings.Contains(err.Error(), "failed -:1") {
				_ = run("", "ip", "link", "del", l.Name)
			}
			return nil, errTaken
		}
		if linkExists(l.Name) {
			_ = run("", "ip", "link", "del", l.Name)
		}
		return nil, err
	}
	return l, nil
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
// end, and sets up forwarding and masquerading on the host.
func (l *Link) configure(pid int) error {
	if err := enableForwarding(); err != nil {
		return err
	}
	// The two sides are independent: configure them at the same time.
	var g errgroup.Group
	g.Go(func() error {
		inside := fmt.Sprintf("addr add %s dev eth0\nlink set eth0 up\nroute add default via %s\n",
			netip.PrefixFrom(l.Addr, 30), l.Gateway)
		if err := inNamespace(pid, func() error { return run(inside, "ip", "-batch", "-") }); err != nil {
			return fmt.Errorf("configure eth0: %w", err)
		}
		return nil
	})
	l.firewall = firewall()
	g.Go(func() error {
		switch l.firewall {
		case "nft":
			return run(l.nftTable(), "nft", "-f", "-")
		case "iptables":
			return run("", "iptables", l.iptablesRule("-A")...)
		}
		return errors.New("masquerade: neither nft nor iptables is installed")
	})
	return g.Wait()
}

// firewall returns the masquerading tool to use: nft, else iptables, else
// "".
func firewall() string {
	for _, name := range []string{"nft", "iptables"} {
		if _, err := exec.LookPath(name); err == nil {
			return name
		}
	}
	return ""
}

// nftTable is the nftables script that masquerades the link's traffic.
func (l *Link) nftTable() string {
	return fmt.Sprintf(`table ip %[1]s {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr %[2]s oifname != "%[1]s" masquerade
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
		iifname "%[1]s" accept
		oifname "%[1]s" ct state established,related accept
	}
}
`, l.Name, l.Subnet)
}

// iptablesRule is the masquerade rule, appended (-A) or deleted (-D).
func (l *Link) iptablesRule(op string) []string {
	return []string{"-w", "-t", "nat", op, "POSTROUTING", "-s", l.Subnet.String(), "!", "-o", l.Name,
		"-m", "comment", "--comment", l.Name, "-j", "MASQUERADE"}
}

// Detach removes the masquerading and the veth pair.
func (l *Link) Detach() error {
	var errs []error
	switch l.firewall {
	case "nft":
		if err := run("", "nft", "delete", "table", "ip", l.Name); err != nil {
			errs = append(errs, err)
		}
	case "iptables":
		if err := run("", "iptables", l.iptablesRule("-D")...); err != nil {
			errs = append(errs, err)
		}
	}
	if linkExists(l.Name) {
		if err := run("", "ip", "link", "del", l.Name); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("detach network %s: %w", l.Name, err)
	}
	return nil
}

// Sweep deletes the masquerading of links that are gone: what a process
// that died while a run was attached left behind.
func Sweep() error {
	var errs []error
	switch firewall() {
	case "nft":
		out, err := output("nft", "list", "tables", "ip")
		if err != nil {
			return fmt.Errorf("sweep networks: %w", err)
		}
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) == 3 && f[0] == "table" && strings.HasPrefix(f[2], Prefix) && !linkExists(f[2]) {
				if err := run("", "nft", "delete", "table", "ip", f[2]); err != nil {
					errs = append(errs, err)
				}
			}
		}
	case "iptables":
		out, err := output("iptables", "-w", "-t", "nat", "-S", "POSTROUTING")
		if err != nil {
			return fmt.Errorf("sweep networks: %w", err)
		}
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			name := commentOf(f)
			if len(f) < 2 || f[0] != "-A" || !strings.HasPrefix(name, Prefix) || linkExists(name) {
				continue
			}
			f[0] = "-D"
			if err := run("", "iptables", append([]string{"-w", "-t", "nat"}, f...)...); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sweep networks: %w", err)
	}
	return nil
}

// commentOf returns the --comment of an iptables -S rule.
func commentOf(f []string) string {
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "--comment" {
			return strings.Trim(f[i+1], `"`)
		}
	}
	return ""
}

func linkExists(name string) bool {
	_, err := os.Lstat("/sys/class/net/" + name)
	return err == nil
}

// enableForwarding switches IPv4 forwarding on; it stays on, as Docker
// leaves it.
func enableForwarding() error {
	const p = "/proc/sys/net/ipv4/ip_forward"
	if data, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(data)) == "1" {
		return nil
	}
	if err := os.WriteFile(p, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("enable ip forwarding: %w", err)
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
