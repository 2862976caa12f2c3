package fileop

import (
	"fmt"
	"strconv"
	"strings"
)

// modeFunc computes the mode bits (permissions plus setuid, setgid and
// sticky) of a copied file or directory from the source's bits.
type modeFunc func(mode uint32, isDir bool) uint32

// parseChmod parses a --chmod value: octal ("755", "0644", "4755") or
// symbolic ("u+x,g-w", "a=rX", "go=u-w"). An empty value returns nil: modes
// are kept.
func parseChmod(s string) (modeFunc, error) {
	if s == "" {
		return nil, nil
	}
	if n, err := strconv.ParseUint(s, 8, 32); err == nil {
		if n > 07777 {
			return nil, fmt.Errorf("invalid chmod %q: mode out of range", s)
		}
		return func(uint32, bool) uint32 { return uint32(n) }, nil
	}
	var clauses []func(uint32, bool) uint32
	for _, c := range strings.Split(s, ",") {
		f, err := parseClause(c)
		if err != nil {
			return nil, fmt.Errorf("invalid chmod %q: %w", s, err)
		}
		clauses = append(clauses, f)
	}
	return func(mode uint32, isDir bool) uint32 {
		mode &= 07777
		for _, f := range clauses {
			mode = f(mode, isDir)
		}
		return mode
	}, nil
}

const (
	whoU = 04700 // user rwx and setuid
	whoG = 02070 // group rwx and setgid
	whoO = 01007 // other rwx and sticky
)

// parseClause parses one "[ugoa]*([-+=]([rwxXst]*|[ugo]))+" clause.
func parseClause(c string) (func(uint32, bool) uint32, error) {
	i, who := 0, uint32(0)
	for ; i < len(c) && strings.IndexByte("ugoa", c[i]) >= 0; i++ {
		switch c[i] {
		case 'u':
			who |= whoU
		case 'g':
			who |= whoG
		case 'o':
			who |= whoO
		case 'a':
			who |= whoU | whoG | whoO
		}
	}
	if who == 0 {
		who = whoU | whoG | whoO
	}
	type action struct {
		op    byte
		perms string
	}
	var actions []action
	for i < len(c) {
		if strings.IndexByte("+-=", c[i]) < 0 {
			return nil, fmt.Errorf("clause %q: expected +, - or = at %q", c, c[i:])
		}
		op := c[i]
		i++
		j := i
		for j < len(c) && strings.IndexByte("rwxXstugo", c[j]) >= 0 {
			j++
		}
		actions = append(actions, action{op, c[i:j]})
		i = j
	}
	if len(actions) == 0 {
		return nil, fmt.Errorf("clause %q: no operator", c)
	}
	return func(mode uint32, isDir bool) uint32 {
		for _, a := range actions {
			bits := permBits(a.perms, mode, isDir) & who
			switch a.op {
			case '+':
				mode |= bits
			case '-':
				mode &^= bits
			case '=':
				mode = mode&^who | bits
			}
		}
		return mode
	}, nil
}

// permBits spreads the letters of perms over all three classes; the caller
// masks the classes the clause names.
func permBits(perms string, mode uint32, isDir bool) uint32 {
	var b uint32
	for _, p := range perms {
		switch p {
		case 'r':
			b |= 0444
		case 'w':
			b |= 0222
		case 'x':
			b |= 0111
		case 'X':
			if isDir || mode&0111 != 0 {
				b |= 0111
			}
		case 's':
			b |= 06000
		case 't':
			b |= 01000
		case 'u':
			b |= spread((mode >> 6) & 7)
		case 'g':
			b |= spread((mode >> 3) & 7)
		case 'o':
			b |= spread(mode & 7)
		}
	}
	return b
}

func spread(rwx uint32) uint32 { return rwx<<6 | rwx<<3 | rwx }
