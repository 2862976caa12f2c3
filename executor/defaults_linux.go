package executor

import "slices"

// The defaults a Spec implies, for backends that hand them to another
// runtime (executor/runc writes them into an OCI runtime-spec).

// DefaultCapabilities returns Docker's default capability set, spelled as
// "CAP_CHOWN".
func DefaultCapabilities() []string { return slices.Clone(defaultCapNames) }

// MaskedPaths returns the /proc and /sys paths Docker hides.
func MaskedPaths() []string { return slices.Clone(maskedPaths) }

// ReadonlyPaths returns the /proc paths Docker makes read-only.
func ReadonlyPaths() []string { return slices.Clone(readonlyPaths) }

// HostsFile returns the generated /etc/hosts of a run.
func HostsFile(hostname string, extra []HostIP) []byte { return hostsFile(hostname, extra) }

// ResolvConf derives a run's /etc/resolv.conf from the host's.
func ResolvConf(host []byte, hostNetwork bool) []byte { return resolvConf(host, hostNetwork) }

// ProcessEnv completes env the way a run does: PATH defaults to
// DefaultPath and HOME to home.
func ProcessEnv(env []string, home string) []string {
	env = slices.Clone(env)
	if _, ok := lookupEnv(env, "PATH"); !ok {
		env = append(env, "PATH="+DefaultPath)
	}
	if _, ok := lookupEnv(env, "HOME"); !ok {
		env = append(env, "HOME="+home)
	}
	return env
}
