// Package layering has no code: its test checks that strata's packages
// depend on each other only in the directions DESIGN.md §2 allows.
package layering
