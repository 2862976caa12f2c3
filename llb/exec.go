package llb

// NetMode is the network a RUN step gets.
type NetMode string

const (
	NetDefault NetMode = ""     // a private network namespace (see executor)
	NetNone    NetMode = "none" // loopback only
	NetHost    NetMode = "host" // the host's network
)

// SecurityMode is the privilege level of a RUN step.
type SecurityMode string

const (
	SecuritySandbox  SecurityMode = ""
	SecurityInsecure SecurityMode = "insecure"
)

// ExecOp runs a command over its root mount. Its output is the root mount
// after the command.
type ExecOp struct {
	Args     []string
	Env      []string `json:",omitempty"`
	Cwd      string
	User     string       `json:",omitempty"`
	Hostname string       `json:",omitempty"`
	Network  NetMode      `json:",omitempty"`
	Security SecurityMode `json:",omitempty"`
	// ExtraHosts are "name=ip" entries added to /etc/hosts.
	ExtraHosts []string `json:",omitempty"`
	// Mounts[0] is the root filesystem (Dest "/").
	Mounts []Mount
	// SecretEnv maps environment variable names to secret IDs; values
	// never enter the op, its digest or the image.
	SecretEnv map[string]string `json:",omitempty"`
	// SecretEnvRequired names the SecretEnv variables whose secret must be
	// given (RUN --mount=type=secret,env=NAME,required).
	SecretEnvRequired []string `json:",omitempty"`
	// ProxyEnv holds the predefined proxy build args (HTTP_PROXY, ...) the
	// step sees. Like BuildKit, strata keeps them out of the op's digest and
	// so out of its cache key: a proxy change does not re-run a step.
	ProxyEnv []string `json:"-"`
}

// MountType is the kind of a RUN mount.
type MountType string

const (
	MountBind   MountType = "bind"
	MountCache  MountType = "cache"
	MountTmpfs  MountType = "tmpfs"
	MountSecret MountType = "secret"
	MountSSH    MountType = "ssh"
)

// Mount is one filesystem in an ExecOp.
type Mount struct {
	Type MountType
	Dest string
	// Input is the index into Vertex.Inputs that backs the mount, or -1 for
	// none (an empty dir for cache mounts, scratch for binds).
	Input int
	// Selector is the subpath of the input to mount.
	Selector string       `json:",omitempty"`
	Readonly bool         `json:",omitempty"`
	Cache    *CacheMount  `json:",omitempty"`
	Tmpfs    *TmpfsMount  `json:",omitempty"`
	Secret   *SecretMount `json:",omitempty"`
	SSH      *SSHMount    `json:",omitempty"`
}

// CacheSharing is how concurrent builds share one cache mount.
type CacheSharing string

const (
	SharingShared  CacheSharing = "shared"
	SharingPrivate CacheSharing = "private"
	SharingLocked  CacheSharing = "locked"
)

// CacheMount is a persistent directory kept across builds, never in a layer.
type CacheMount struct {
	ID      string
	Sharing CacheSharing
	Mode    uint32 `json:",omitempty"`
	UID     int    `json:",omitempty"`
	GID     int    `json:",omitempty"`
}

// TmpfsMount is a memory-backed mount.
type TmpfsMount struct {
	Size int64 `json:",omitempty"`
}

// SecretMount exposes a build secret as a file.
type SecretMount struct {
	ID       string
	Required bool   `json:",omitempty"`
	Mode     uint32 `json:",omitempty"`
	UID      int    `json:",omitempty"`
	GID      int    `json:",omitempty"`
}

// SSHMount exposes an SSH agent socket.
type SSHMount struct {
	ID       string
	Required bool   `json:",omitempty"`
	Mode     uint32 `json:",omitempty"`
	UID      int    `json:",omitempty"`
	GID      int    `json:",omitempty"`
}
