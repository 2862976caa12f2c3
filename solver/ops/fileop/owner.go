package fileop

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"

	"github.com/moby/sys/user"
	"github.com/strata-build/strata/context/local"
	"github.com/strata-build/strata/llb"
)

// ids is a resolved owner.
type ids struct{ uid, gid int }

// resolveChown resolves a Chown against destRoot's /etc/passwd and
// /etc/group. A nil Chown returns nil.
func resolveChown(destRoot string, c *llb.Chown) (*ids, error) {
	if c == nil || (c.User == "" && c.Group == "") {
		return nil, nil
	}
	var out ids
	uid, err := strconv.Atoi(c.User)
	switch {
	case c.User == "":
		out.uid = 0
	case err == nil:
		out.uid, out.gid = uid, uid
	default:
		u, err := lookupUser(destRoot, c.User)
		if err != nil {
			return nil, err
		}
		out.uid, out.gid = u.Uid, u.Gid
	}
	if c.Group == "" {
		return &out, nil
	}
	if gid, err := strconv.Atoi(c.Group); err == nil {
		out.gid = gid
		return &out, nil
	}
	g, err := lookupGroup(destRoot, c.Group)
	if err != nil {
		return nil, err
	}
	out.gid = g.Gid
	return &out, nil
}

func lookupUser(destRoot, name string) (user.User, error) {
	p, err := local.Resolve(destRoot, "/etc/passwd")
	if err != nil {
		return user.User{}, err
	}
	users, err := user.ParsePasswdFileFilter(p, func(u user.User) bool { return u.Name == name })
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return user.User{}, fmt.Errorf("unable to find user %s: read passwd file: %w", name, err)
	}
	if len(users) == 0 {
		return user.User{}, fmt.Errorf("unable to find user %s: no matching entries in passwd file", name)
	}
	return users[0], nil
}

func lookupGroup(destRoot, name string) (user.Group, error) {
	p, err := local.Resolve(destRoot, "/etc/group")
	if err != nil {
		return user.Group{}, err
	}
	groups, err := user.ParseGroupFileFilter(p, func(g user.Group) bool { return g.Name == name })
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return user.Group{}, fmt.Errorf("unable to find group %s: read group file: %w", name, err)
	}
	if len(groups) == 0 {
		return user.Group{}, fmt.Errorf("unable to find group %s: no matching entries in group file", name)
	}
	return groups[0], nil
}
