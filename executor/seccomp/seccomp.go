// Package seccomp compiles Docker's default seccomp profile into a classic
// BPF program and loads it on the calling thread.
//
// A profile (runtime-spec's LinuxSeccomp) lists rules: syscall names, an
// optional set of argument conditions that must all hold, and an action
// (allow, or fail with an errno). The first rule that matches decides;
// anything no rule matches gets the default action. Compile turns a profile
// into a Program for the native architecture (syscall tables from
// go-seccomp-bpf's arch package): unknown syscall names are skipped, and calls
// through other ABIs (i386, x32) fail. Load installs a Program on the calling
// OS thread without setting no_new_privs, as Docker does, so it needs
// CAP_SYS_ADMIN; every process the thread forks afterwards inherits it.
//
//	prog, err := seccomp.Default(caps) // once, in the parent; Program is plain data
//	...
//	runtime.LockOSThread()             // in the sandbox, before dropping caps
//	err = prog.Load()
package seccomp

import (
	"fmt"
	"unsafe"

	"github.com/elastic/go-seccomp-bpf/arch"
	profiles "github.com/moby/profiles/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Instruction is one classic BPF instruction, as the kernel reads it.
type Instruction struct {
	Code uint16
	Jt   uint8
	Jf   uint8
	K    uint32
}

// Program is a compiled seccomp filter. It is plain data: it can be
// marshalled and sent to another process.
type Program []Instruction

// Default compiles Docker's default profile for a process whose bounding
// capability set is caps (names such as "CAP_CHOWN"): rules that Docker
// enables only with a capability follow caps.
func Default(caps []string) (Program, error) {
	rs := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}}
	prof, err := profiles.GetDefaultProfile(rs)
	if err != nil {
		return nil, fmt.Errorf("load default seccomp profile: %w", err)
	}
	return Compile(prof)
}

// Compile compiles p for the native architecture. The program checks the
// architecture, then tries each rule in order: a rule is a block that
// reloads the syscall number, compares it, checks the argument conditions
// and returns the rule's action; a failed check falls through to the next
// block, and the default action ends the program. Consecutive plain rules
// share compact chains of comparisons.
func Compile(p *specs.LinuxSeccomp) (Program, error) {
	info, err := arch.GetInfo("")
	if err != nil {
		return nil, fmt.Errorf("compile seccomp profile: %w", err)
	}
	def, err := action(p.DefaultAction, p.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("compile seccomp default action: %w", err)
	}
	var a asm
	a.emit(bpf.LoadAbsolute{Off: 4, Size: 4}) // seccomp_data.arch
	a.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(info.ID), SkipTrue: 1})
	a.emit(bpf.RetConstant{Val: def})
	if info.SeccompMask == 0 && info.ID == arch.X86_64.ID {
		// The x32 ABI shares the audit arch of x86_64: refuse it.
		a.emit(bpf.LoadAbsolute{Off: 0, Size: 4})
		a.emit(bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: uint32(arch.X32.SeccompMask), SkipFalse: 1})
		a.emit(bpf.RetConstant{Val: unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)})
	}
	for i, rule := range p.Syscalls {
		act, err := action(rule.Action, rule.ErrnoRet)
		if err != nil {
			return nil, fmt.Errorf("compile seccomp rule %d (%v): %w", i, rule.Names, err)
		}
		var nrs []uint32
		for _, name := range rule.Names {
			if n, ok := info.SyscallNames[name]; ok {
				nrs = append(nrs, uint32(n|info.SeccompMask))
			}
		}
		if len(rule.Args) == 0 {
			a.chain(nrs, act)
			continue
		}
		for _, nr := range nrs {
			if err := a.conditional(nr, rule.Args, act); err != nil {
				return nil, fmt.Errorf("compile seccomp rule %d (%v): %w", i, rule.Names, err)
			}
		}
	}
	a.emit(bpf.RetConstant{Val: def})
	if len(a.insts) > bpfMaxInstructions {
		return nil, fmt.Errorf("compile seccomp profile: %d instructions, the kernel takes %d", len(a.insts), bpfMaxInstructions)
	}
	raw, err := bpf.Assemble(a.insts)
	if err != nil {
		return nil, fmt.Errorf("assemble seccomp bpf: %w", err)
	}
	prog := make(Program, len(raw))
	for i, r := range raw {
		prog[i] = Instruction{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return prog, nil
}

const (
	bpfMaxInstructions = 4096
	chainLen           = 200 // comparisons sharing one return, within a jump's 255 reach
	argsOffset         = 16  // seccomp_data.args
)

// asm accumulates instructions; jumps to "fail" (the end of the current
// block) are patched when the block closes.
type asm struct {
	insts []bpf.Instruction
	fails []int // indices of jumps whose false branch leaves the block
}

func (a *asm) emit(in bpf.Instruction) { a.insts = append(a.insts, in) }

// chain emits blocks returning act when the syscall number is one of nrs.
func (a *asm) chain(nrs []uint32, act uint32) {
	for len(nrs) > 0 {
		k := min(len(nrs), chainLen)
		a.emit(bpf.LoadAbsolute{Off: 0, Size: 4})
		for i, nr := range nrs[:k] {
			a.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: nr, SkipTrue: uint8(k - i)})
		}
		a.emit(bpf.Jump{Skip: 1})
		a.emit(bpf.RetConstant{Val: act})
		nrs = nrs[k:]
	}
}

// conditional emits one block: syscall nr with all of args holding.
func (a *asm) conditional(nr uint32, args []specs.LinuxSeccompArg, act uint32) error {
	a.fails = a.fails[:0]
	a.emit(bpf.LoadAbsolute{Off: 0, Size: 4})
	a.failIfNot(bpf.JumpEqual, nr)
	for _, arg := range args {
		if err := a.condition(arg); err != nil {
			return err
		}
	}
	a.emit(bpf.RetConstant{Val: act})
	end := len(a.insts)
	for _, i := range a.fails {
		j := a.insts[i].(bpf.JumpIf)
		skip := end - i - 1
		if skip > 255 {
			return fmt.Errorf("condition block too long")
		}
		if j.SkipTrue == failMark {
			j.SkipTrue = uint8(skip)
		}
		if j.SkipFalse == failMark {
			j.SkipFalse = uint8(skip)
		}
		a.insts[i] = j
	}
	return nil
}

// failMark marks a jump offset to patch with the block's end.
const failMark = 255

// failIfNot continues when A cond val holds and leaves the block otherwise.
func (a *asm) failIfNot(cond bpf.JumpTest, val uint32) {
	a.fails = append(a.fails, len(a.insts))
	a.emit(bpf.JumpIf{Cond: cond, Val: val, SkipFalse: failMark})
}

// failIf leaves the block when A cond val holds.
func (a *asm) failIf(cond bpf.JumpTest, val uint32) {
	a.fails = append(a.fails, len(a.insts))
	a.emit(bpf.JumpIf{Cond: cond, Val: val, SkipTrue: failMark})
}

// condition emits a 64-bit comparison of one argument as two 32-bit halves.
func (a *asm) condition(arg specs.LinuxSeccompArg) error {
	if arg.Index > 5 {
		return fmt.Errorf("argument index %d out of range", arg.Index)
	}
	hiOff, loOff := uint32(argsOffset+8*arg.Index), uint32(argsOffset+8*arg.Index)
	if nativeLittleEndian() {
		hiOff += 4
	} else {
		loOff += 4
	}
	ldHi, ldLo := bpf.LoadAbsolute{Off: hiOff, Size: 4}, bpf.LoadAbsolute{Off: loOff, Size: 4}
	hi, lo := uint32(arg.Value>>32), uint32(arg.Value)
	switch arg.Op {
	case specs.OpEqualTo:
		a.emit(ldHi)
		a.failIfNot(bpf.JumpEqual, hi)
		a.emit(ldLo)
		a.failIfNot(bpf.JumpEqual, lo)
	case specs.OpNotEqual:
		a.emit(ldHi)
		a.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: hi, SkipFalse: 2}) // halves differ: holds
		a.emit(ldLo)
		a.failIf(bpf.JumpEqual, lo)
	case specs.OpGreaterThan, specs.OpGreaterEqual:
		a.emit(ldHi)
		a.emit(bpf.JumpIf{Cond: bpf.JumpGreaterThan, Val: hi, SkipTrue: 3})
		a.failIfNot(bpf.JumpEqual, hi)
		a.emit(ldLo)
		if arg.Op == specs.OpGreaterThan {
			a.failIfNot(bpf.JumpGreaterThan, lo)
		} else {
			a.failIfNot(bpf.JumpGreaterOrEqual, lo)
		}
	case specs.OpLessThan, specs.OpLessEqual:
		a.emit(ldHi)
		a.emit(bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: hi, SkipFalse: 3})
		a.failIfNot(bpf.JumpEqual, hi)
		a.emit(ldLo)
		if arg.Op == specs.OpLessThan {
			a.failIf(bpf.JumpGreaterOrEqual, lo)
		} else {
			a.failIf(bpf.JumpGreaterThan, lo)
		}
	case specs.OpMaskedEqual:
		a.emit(ldHi)
		a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: hi})
		a.failIfNot(bpf.JumpEqual, uint32(arg.ValueTwo>>32))
		a.emit(ldLo)
		a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: lo})
		a.failIfNot(bpf.JumpEqual, uint32(arg.ValueTwo))
	default:
		return fmt.Errorf("unsupported comparison %q", arg.Op)
	}
	return nil
}

func nativeLittleEndian() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}

// action maps a runtime-spec action to a BPF return value. An errno action
// without a value fails with EPERM.
func action(a specs.LinuxSeccompAction, errnoRet *uint) (uint32, error) {
	switch a {
	case specs.ActAllow:
		return unix.SECCOMP_RET_ALLOW, nil
	case specs.ActErrno:
		errno := uint(unix.EPERM)
		if errnoRet != nil {
			errno = *errnoRet
		}
		if errno > unix.SECCOMP_RET_DATA {
			return 0, fmt.Errorf("errno %d out of range", errno)
		}
		return unix.SECCOMP_RET_ERRNO | uint32(errno), nil
	case specs.ActKill, specs.ActKillThread:
		return unix.SECCOMP_RET_KILL_THREAD, nil
	case specs.ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS, nil
	case specs.ActTrap:
		return unix.SECCOMP_RET_TRAP, nil
	case specs.ActLog:
		return unix.SECCOMP_RET_LOG, nil
	}
	return 0, fmt.Errorf("unsupported seccomp action %q", a)
}

// Load installs p on the calling OS thread (the caller must hold it with
// runtime.LockOSThread). It does not set no_new_privs, so it needs
// CAP_SYS_ADMIN in the thread's effective set.
func (p Program) Load() error {
	if len(p) == 0 {
		return fmt.Errorf("load seccomp filter: empty program")
	}
	fprog := unix.SockFprog{Len: uint16(len(p)), Filter: (*unix.SockFilter)(unsafe.Pointer(&p[0]))}
	_, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog)))
	if errno != 0 {
		return fmt.Errorf("load seccomp filter: %w", errno)
	}
	return nil
}
