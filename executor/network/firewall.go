//go:build linux

package network

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// The masquerading is shared by every link: one nftables table named
// Prefix, made once and left in place, as Docker leaves its chains. Its
// rules name the links by the wildcard Prefix+"*", so a run adds and removes
// nothing but its veth pair.
//
//	table ip strata {
//		chain postrouting {
//			type nat hook postrouting priority srcnat; policy accept;
//			ip saddr 10.213.0.0/16 oifname != "strata*" masquerade
//		}
//		chain forward {
//			type filter hook forward priority filter; policy accept;
//			iifname "strata*" accept
//			oifname "strata*" ct state established,related accept
//		}
//	}
//
// Without nf_tables, the same masquerading is one iptables rule in the nat
// table's POSTROUTING chain, commented Prefix.

// ruleTag marks each rule of the shared table with its version, as the
// comment nft prints (a type-length-value record of NFTNL_UDATA_RULE_COMMENT):
// rules without it are rewritten.
var ruleTag = append([]byte{0, byte(len(Prefix+" v1") + 1)}, Prefix+" v1\x00"...)

// sharedTable is the table that masquerades every link.
var sharedTable = &nftables.Table{Family: nftables.TableFamilyIPv4, Name: Prefix}

func sharedChains() (postrouting, forward *nftables.Chain) {
	accept := nftables.ChainPolicyAccept
	postrouting = &nftables.Chain{Name: "postrouting", Table: sharedTable, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &accept}
	forward = &nftables.Chain{Name: "forward", Table: sharedTable, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept}
	return postrouting, forward
}

// ifname compares the input or output interface name with the wildcard
// Prefix+"*": the kernel compares only the bytes given.
func ifname(key expr.MetaKey, op expr.CmpOp) []expr.Any {
	return []expr.Any{&expr.Meta{Key: key, Register: 1}, &expr.Cmp{Op: op, Register: 1, Data: []byte(Prefix)}}
}

// sharedRules returns the rules of each chain, in order.
func sharedRules() map[*nftables.Chain][][]expr.Any {
	postrouting, forward := sharedChains()
	base := Range.Masked().Addr().As4()
	mask := net4Mask(Range.Bits())
	accept := &expr.Verdict{Kind: expr.VerdictAccept}
	established := binary.NativeEndian.AppendUint32(nil, expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED)
	masq := []expr.Any{
		// ip saddr 10.213.0.0/16: the source address is at offset 12.
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask[:], Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: base[:]},
	}
	masq = append(masq, ifname(expr.MetaKeyOIFNAME, expr.CmpOpNeq)...)
	masq = append(masq, &expr.Masq{})
	related := append(ifname(expr.MetaKeyOIFNAME, expr.CmpOpEq),
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: established, Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
		accept)
	return map[*nftables.Chain][][]expr.Any{
		postrouting: {masq},
		forward:     {append(ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq), accept), related},
	}
}

func net4Mask(bits int) [4]byte {
	var m [4]byte
	binary.BigEndian.PutUint32(m[:], ^uint32(0)<<(32-bits))
	return m
}

// masquerade makes sure the shared masquerading is in place: the nftables
// table, or, where nf_tables is not usable, the iptables rule.
func masquerade() error {
	nftErr := ensureTable()
	if nftErr == nil {
		return nil
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		return fmt.Errorf("masquerade %s: %w", Range, nftErr)
	}
	if err := ensureIptablesRule(); err != nil {
		return fmt.Errorf("masquerade %s: %w (nftables: %w)", Range, err, nftErr)
	}
	return nil
}

// ensureTable checks the shared table and, when it is missing or differs,
// writes it in one transaction that also empties its chains: concurrent
// writers, in this process or others, each leave exactly the same table.
func ensureTable() error {
	conn, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	rules := sharedRules()
	if tableCurrent(conn, rules) {
		return nil
	}
	conn.AddTable(sharedTable)
	for chain, exprs := range rules {
		conn.AddChain(chain)
		conn.FlushChain(chain)
		for _, e := range exprs {
			conn.AddRule(&nftables.Rule{Table: sharedTable, Chain: chain, Exprs: e, UserData: ruleTag})
		}
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("write nftables table %s: %w", Prefix, err)
	}
	return nil
}

// tableCurrent reports whether each chain of the shared table holds
// exactly its tagged rules.
func tableCurrent(conn *nftables.Conn, rules map[*nftables.Chain][][]expr.Any) bool {
	for chain, exprs := range rules {
		got, err := conn.GetRules(sharedTable, chain)
		if err != nil || len(got) != len(exprs) {
			return false
		}
		for _, r := range got {
			if !slices.Equal(r.UserData, ruleTag) {
				return false
			}
		}
	}
	return true
}

// iptablesRule is the shared masquerade rule, without the chain operation.
func iptablesRule() []string {
	return []string{"-s", Range.String(), "!", "-o", Prefix + "+",
		"-m", "comment", "--comment", Prefix, "-j", "MASQUERADE"}
}

// ensureIptablesRule appends the shared rule when it is missing and
// deletes extra copies concurrent appends made.
func ensureIptablesRule() error {
	out, err := output("iptables", "-w", "-t", "nat", "-S", "POSTROUTING")
	if err != nil {
		return err
	}
	n := 0
	for _, line := range strings.Split(out, "\n") {
		if commentOf(strings.Fields(line)) == Prefix {
			n++
		}
	}
	rule := iptablesRule()
	switch {
	case n == 0:
		return run("", "iptables", append([]string{"-w", "-t", "nat", "-A", "POSTROUTING"}, rule...)...)
	case n > 1:
		for range n - 1 {
			if err := run("", "iptables", append([]string{"-w", "-t", "nat", "-D", "POSTROUTING"}, rule...)...); err != nil {
				return err
			}
		}
	}
	return nil
}

// perLink reports whether name is one link's own name (Prefix and four hex
// digits), as opposed to the shared table's.
func perLink(name string) bool {
	suffix, ok := strings.CutPrefix(name, Prefix)
	return ok && len(suffix) == 4 && strings.Trim(suffix, "0123456789abcdef") == ""
}

// Sweep deletes masquerading left for single links that are gone: a table
// per link (or an iptables rule commented with the link's name) is what
// strata made before the shared table, and a process killed while its
// run was attached left it behind. Links need no sweeping: the kernel
// destroys a veth pair with the namespace of either end, and the sandbox's
// namespace dies with the process that made it. The shared table stays.
func Sweep() error {
	var errs []error
	conn, err := nftables.New()
	if err == nil {
		var tables []*nftables.Table
		if tables, err = conn.ListTablesOfFamily(nftables.TableFamilyIPv4); err == nil {
			n := 0
			for _, t := range tables {
				if perLink(t.Name) && !linkExists(t.Name) {
					conn.DelTable(t)
					n++
				}
			}
			if n > 0 {
				if err := conn.Flush(); err != nil {
					errs = append(errs, fmt.Errorf("delete nftables tables: %w", err))
				}
			}
		}
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("list nftables tables: %w", err))
	}
	if _, lerr := exec.LookPath("iptables"); lerr == nil {
		errs = append(errs, sweepIptables())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sweep networks: %w", err)
	}
	return nil
}

// sweepIptables deletes the rules commented with the name of a link that
// is gone.
func sweepIptables() error {
	out, err := output("iptables", "-w", "-t", "nat", "-S", "POSTROUTING")
	if err != nil {
		return err
	}
	var errs []error
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		name := commentOf(f)
		if len(f) < 2 || f[0] != "-A" || !perLink(name) || linkExists(name) {
			continue
		}
		f[0] = "-D"
		if err := run("", "iptables", append([]string{"-w", "-t", "nat"}, f...)...); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
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
