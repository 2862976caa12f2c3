package seccomp

import (
	"encoding/binary"
	"testing"
	"unsafe"

	"github.com/elastic/go-seccomp-bpf/arch"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

var dockerCaps = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}

// run evaluates prog on a seccomp_data for the native arch.
func run(t *testing.T, prog Program, auditArch uint32, nr int, args ...uint64) uint32 {
	t.Helper()
	raw := make([]bpf.RawInstruction, len(prog))
	for i, in := range prog {
		raw[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	insts, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("program does not disassemble")
	}
	vm, err := bpf.NewVM(insts)
	if err != nil {
		t.Fatal(err)
	}
	// struct seccomp_data { int nr; u32 arch; u64 ip; u64 args[6]; }
	data := make([]byte, 64)
	binary.NativeEndian.PutUint32(data[0:], uint32(nr))
	binary.NativeEndian.PutUint32(data[4:], auditArch)
	for i, a := range args {
		binary.NativeEndian.PutUint64(data[16+8*i:], a)
	}
	// The VM loads words big-endian; the kernel loads them native-endian.
	for i := 0; i < len(data); i += 4 {
		v := binary.NativeEndian.Uint32(data[i:])
		binary.BigEndian.PutUint32(data[i:], v)
	}
	ret, err := vm.Run(data)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(ret)
}

func TestDefaultProfile(t *testing.T) {
	prog, err := Default(dockerCaps)
	if err != nil {
		t.Fatal(err)
	}
	info, err := arch.GetInfo("")
	if err != nil {
		t.Skip(err)
	}
	nr := func(name string) int {
		n, ok := info.SyscallNames[name]
		if !ok {
			t.Fatalf("no syscall %s", name)
		}
		return n
	}
	allow := uint32(unix.SECCOMP_RET_ALLOW)
	eperm := uint32(unix.SECCOMP_RET_ERRNO) | uint32(unix.EPERM)
	enosys := uint32(unix.SECCOMP_RET_ERRNO) | uint32(unix.ENOSYS)
	a := uint32(info.ID)
	tests := []struct {
		name string
		nr   int
		args []uint64
		want uint32
	}{
		{"read", nr("read"), nil, allow},
		{"execve", nr("execve"), nil, allow},
		{"mount without CAP_SYS_ADMIN", nr("mount"), nil, eperm},
		{"unshare", nr("unshare"), nil, eperm},
		{"kexec_load", nr("kexec_load"), nil, eperm},
		{"clone3 without CAP_SYS_ADMIN", nr("clone3"), nil, enosys},
		{"clone of a thread", nr("clone"), []uint64{unix.CLONE_VM | unix.CLONE_THREAD}, allow},
		{"clone into a new user ns", nr("clone"), []uint64{unix.CLONE_NEWUSER}, eperm},
		{"personality query", nr("personality"), []uint64{0xffffffff}, allow},
		{"personality other", nr("personality"), []uint64{0x0400000}, eperm},
		{"socket AF_INET", nr("socket"), []uint64{unix.AF_INET}, allow},
		{"socket AF_VSOCK", nr("socket"), []uint64{unix.AF_VSOCK}, eperm},
		{"chown with CAP_CHOWN", nr("chown"), nil, allow},
	}
	for _, tt := range tests {
		if got := run(t, prog, a, tt.nr, tt.args...); got != tt.want {
			t.Errorf("%s: got %#x, want %#x", tt.name, got, tt.want)
		}
	}
	if got := run(t, prog, 0x40000003, 3); got != eperm { // i386 audit arch
		t.Errorf("foreign arch: got %#x, want %#x", got, eperm)
	}
}

func TestCompileRejectsUnsupported(t *testing.T) {
	if _, err := Default(nil); err != nil {
		t.Fatalf("default profile without caps: %v", err)
	}
	if unsafe.Sizeof(Instruction{}) != unsafe.Sizeof(unix.SockFilter{}) {
		t.Fatal("Instruction does not match struct sock_filter")
	}
}

func TestCompileConditions(t *testing.T) {
	info, err := arch.GetInfo("")
	if err != nil {
		t.Skip(err)
	}
	nr := info.SyscallNames["getpid"]
	allow := uint32(unix.SECCOMP_RET_ALLOW)
	deny := uint32(unix.SECCOMP_RET_ERRNO) | uint32(unix.EPERM)
	big := uint64(5)<<32 | 7
	tests := []struct {
		op       specs.LinuxSeccompOperator
		value    uint64
		valueTwo uint64
		arg      uint64
		want     bool
	}{
		{specs.OpEqualTo, big, 0, big, true},
		{specs.OpEqualTo, big, 0, 7, false},
		{specs.OpNotEqual, big, 0, 7, true},
		{specs.OpNotEqual, big, 0, big, false},
		{specs.OpGreaterThan, big, 0, big + 1, true},
		{specs.OpGreaterThan, big, 0, big, false},
		{specs.OpGreaterThan, big, 0, 6<<32 | 0, true},
		{specs.OpGreaterThan, big, 0, 8, false},
		{specs.OpGreaterEqual, big, 0, big, true},
		{specs.OpGreaterEqual, big, 0, big - 1, false},
		{specs.OpLessThan, big, 0, big - 1, true},
		{specs.OpLessThan, big, 0, big, false},
		{specs.OpLessThan, big, 0, 4<<32 | 9, true},
		{specs.OpLessThan, big, 0, 6 << 32, false},
		{specs.OpLessEqual, big, 0, big, true},
		{specs.OpLessEqual, big, 0, big + 1, false},
		{specs.OpMaskedEqual, 0xf0, 0x30, 0x3a, true},
		{specs.OpMaskedEqual, 0xf0, 0x30, 0x4a, false},
		{specs.OpMaskedEqual, 1 << 40, 0, 1 << 40, false},
	}
	for _, tt := range tests {
		prof := &specs.LinuxSeccomp{
			DefaultAction: specs.ActErrno,
			Syscalls: []specs.LinuxSyscall{
				{Names: []string{"getpid"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 2, Value: tt.value, ValueTwo: tt.valueTwo, Op: tt.op}}},
				{Names: []string{"getppid", "no_such_syscall"}, Action: specs.ActAllow},
			},
		}
		prog, err := Compile(prof)
		if err != nil {
			t.Fatal(err)
		}
		want := deny
		if tt.want {
			want = allow
		}
		if got := run(t, prog, uint32(info.ID), nr, 0, 0, tt.arg); got != want {
			t.Errorf("%s %#x (two %#x) on %#x: got %#x, want %#x", tt.op, tt.value, tt.valueTwo, tt.arg, got, want)
		}
		// A failed condition must not disturb the rules after it.
		if got := run(t, prog, uint32(info.ID), info.SyscallNames["getppid"], 0, 0, tt.arg); got != allow {
			t.Errorf("getppid after %s: got %#x", tt.op, got)
		}
	}
}
