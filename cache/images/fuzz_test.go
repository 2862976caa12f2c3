package images

import "testing"

// FuzzNormalize checks that a normalized name is a fixed point of Normalize
// and survives the trip through its familiar form.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"busybox", "x/y:1", "localhost:5000/a", "a@sha256:" + hexA, "[::1]:5000/a:b", "docker.io/library/a/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		n, err := Normalize(ref)
		if err != nil {
			return
		}
		if again, err := Normalize(n); err != nil || again != n {
			t.Fatalf("Normalize(%q) = %q, but Normalize(%q) = %q, %v", ref, n, n, again, err)
		}
		if back, err := Normalize(Familiar(n)); err != nil || back != n {
			t.Fatalf("Normalize(Familiar(%q)) = %q, %v", n, back, err)
		}
	})
}
