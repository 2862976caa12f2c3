package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/strata-build/strata/cache/images"
	"github.com/strata-build/strata/internal/errdefs"
	"github.com/strata-build/strata/store"
)

// lookupImage finds the stored image ref names: a name, else an image ID
// or a prefix of one (with or without "sha256:") as `strata images`
// prints it. list is the store's images for the platform, read on the
// first lookup that needs it.
func lookupImage(ctx context.Context, st *store.Store, list *[]store.Summary, platform ocispec.Platform, ref string) (store.Image, error) {
	img, err := st.Image(ctx, ref)
	if err == nil || !errors.Is(err, errdefs.ErrNotFound) && isName(ref) {
		return img, err
	}
	if *list == nil {
		if *list, err = st.Images(ctx, platform); err != nil {
			return store.Image{}, err
		}
	}
	id, err := matchID(*list, ref)
	if err != nil {
		return store.Image{}, err
	}
	i := slices.IndexFunc(*list, func(s store.Summary) bool { return s.ID == id })
	return (*list)[i].Image, nil
}

// isName reports whether ref is a valid image name.
func isName(ref string) bool {
	_, err := images.Normalize(ref)
	return err == nil
}

// inspectImage is one image as `docker image inspect` prints it, so the
// same jq paths and templates read it, with what docker has no field for
// after docker's fields.
type inspectImage struct {
	ID            string `json:"Id"` // the config's digest
	RepoTags      []string
	RepoDigests   []string
	Parent        string
	Comment       string
	Created       string `json:",omitempty"`
	DockerVersion string
	Author        string
	Config        inspectConfig
	Architecture  string
	Variant       string `json:",omitempty"`
	Os            string
	OsVersion     string `json:",omitempty"`
	Size          int64  // the config's and the layers' size as stored (compressed)
	RootFS        inspectRootFS
	Metadata      inspectMetadata
	// Descriptor is what the name points at: a manifest, or an index of
	// the image's platforms.
	Descriptor ocispec.Descriptor

	// Manifest is the descriptor of the platform's manifest (Descriptor
	// itself when that is a manifest).
	Manifest ocispec.Descriptor
	// OsFeatures is the config's os.features.
	OsFeatures []string `json:",omitempty"`
	// History is the config's history, oldest first.
	History []ocispec.History
	// Container and ContainerConfig are the container and its config an
	// image made by the classic docker builder was committed from.
	Container       string          `json:",omitempty"`
	ContainerConfig json.RawMessage `json:",omitempty"`
}

type inspectRootFS struct {
	Type   string
	Layers []string `json:",omitempty"` // the layers' diff IDs, bottom first
}

type inspectMetadata struct {
	LastTagTime time.Time // when a name last pointed at the image
}

// inspectConfig is the config's container config as docker's type has
// it, and any field that type lacks (Hostname, Image... of images docker's
// classic builder made) as it is in the config.
type inspectConfig struct {
	dockerspec.DockerOCIImageConfig
	Extra map[string]json.RawMessage `json:"-"`
}

// MarshalJSON writes the typed fields, then the extra ones sorted.
func (c inspectConfig) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(c.DockerOCIImageConfig); err != nil {
		return nil, err
	}
	out := bytes.TrimRight(b.Bytes(), "\n")
	if len(c.Extra) == 0 {
		return out, nil
	}
	out = out[:len(out)-1] // the closing brace
	first := len(out) == 1
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range c.Extra {
			if !yield(k) {
				return
			}
		}
	}) {
		if !first {
			out = append(out, ',')
		}
		first = false
		key, _ := json.Marshal(k)
		out = append(append(append(out, key...), ':'), c.Extra[k]...)
	}
	return append(out, '}'), nil
}

// configFields are the JSON names of DockerOCIImageConfig's fields.
var configFields = jsonFields(reflect.TypeFor[dockerspec.DockerOCIImageConfig]())

func jsonFields(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous {
			out = append(out, jsonFields(f.Type)...)
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		out = append(out, cmp.Or(name, f.Name))
	}
	return out
}

// rawConfig is an image config as stored: the OCI one with docker's
// additions, and the fields of docker's classic builder.
type rawConfig struct {
	dockerspec.DockerOCIImage
	Comment         string          `json:"comment"`
	Container       string          `json:"container"`
	ContainerConfig json.RawMessage `json:"container_config"`
	DockerVersion   string          `json:"docker_version"`
	Parent          string          `json:"parent"`
}

// newInspectImage describes the image res of the stored name img; list
// (the store's images) gives the other names of the same image.
func newInspectImage(img store.Image, res *images.Resolved, list []store.Summary) (inspectImage, error) {
	var raw rawConfig
	if err := json.Unmarshal(res.ConfigBytes, &raw); err != nil {
		return inspectImage{}, fmt.Errorf("%s: decode config: %w", images.Familiar(img.Name), err)
	}
	var fields struct {
		Config map[string]json.RawMessage `json:"config"`
	}
	if err := json.Unmarshal(res.ConfigBytes, &fields); err != nil {
		return inspectImage{}, fmt.Errorf("%s: decode config: %w", images.Familiar(img.Name), err)
	}
	out := inspectImage{
		ID:            res.Manifest.Config.Digest.String(),
		RepoTags:      []string{},
		RepoDigests:   []string{},
		Parent:        raw.Parent,
		Comment:       raw.Comment,
		DockerVersion: raw.DockerVersion,
		Author:        raw.Author,
		Config:        inspectConfig{DockerOCIImageConfig: raw.Config},
		Architecture:  raw.Architecture,
		Variant:       raw.Variant,
		Os:            raw.OS,
		OsVersion:     raw.OSVersion,
		Size:          res.Manifest.Config.Size,
		RootFS:        inspectRootFS{Type: raw.RootFS.Type},
		Metadata:      inspectMetadata{LastTagTime: img.Updated},
		Descriptor:    img.Target,
		Manifest:      res.ManifestDesc,
		OsFeatures:    raw.OSFeatures,
		History:       cmpSlice(raw.History),
		Container:     raw.Container,
	}
	if raw.Created != nil {
		out.Created = raw.Created.UTC().Format(time.RFC3339Nano)
	}
	if len(raw.ContainerConfig) > 0 && string(raw.ContainerConfig) != "null" {
		out.ContainerConfig = raw.ContainerConfig
	}
	for k, v := range fields.Config {
		if !slices.ContainsFunc(configFields, func(f string) bool { return strings.EqualFold(f, k) }) {
			if out.Config.Extra == nil {
				out.Config.Extra = map[string]json.RawMessage{}
			}
			out.Config.Extra[k] = v
		}
	}
	for _, l := range res.Manifest.Layers {
		out.Size += l.Size
	}
	for _, d := range raw.RootFS.DiffIDs {
		out.RootFS.Layers = append(out.RootFS.Layers, d.String())
	}
	// The image's names: every name whose platform's config is this one.
	names := []store.Image{img}
	for _, s := range list {
		if s.ID == res.Manifest.Config.Digest && s.Name != img.Name {
			names = append(names, s.Image)
		}
	}
	slices.SortFunc(names, func(a, b store.Image) int { return strings.Compare(a.Name, b.Name) })
	for _, n := range names {
		fam := images.Familiar(n.Name)
		repo, _, digested := strings.Cut(fam, "@")
		if !digested {
			out.RepoTags = append(out.RepoTags, fam)
			repo, _ = splitRepoTag(fam)
		}
		if d := repo + "@" + n.Target.Digest.String(); !slices.Contains(out.RepoDigests, d) {
			out.RepoDigests = append(out.RepoDigests, d)
		}
	}
	return out, nil
}

// cmpSlice is s, or an empty slice for nil: JSON [] rather than null.
func cmpSlice[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func newInspect(g *globals) *cobra.Command {
	var format, platform string
	c := &cobra.Command{
		Use:   "inspect [OPTIONS] IMAGE...",
		Short: "Show images' details as JSON, in docker image inspect's shape",
		Example: `  strata inspect busybox
  strata inspect --format '{{.Id}}' app:1
  strata inspect --format '{{json .Config.Env}}' app:1
  strata inspect --format '{{.Os}}/{{.Architecture}} {{.Size}}' app:1 busybox
  strata inspect app:1 | jq -r '.[0].RootFS.Layers[]'
  strata inspect --platform linux/arm64 alpine`,
		Long: `Show the details of images as a JSON array, in the shape docker image
inspect prints, so the same jq paths and templates read it: .Id (the
config's digest, the image ID), .RepoTags, .RepoDigests, .Created,
.Config (.Config.Env, .Config.Cmd, .Config.Labels...), .Architecture,
.Os, .Size, .RootFS.Layers, .Descriptor (what the name points at).

After docker's fields come those docker has no field for: .Manifest (the
platform's manifest descriptor), .OsFeatures, .History (the config's
history) and, for images of docker's classic builder, .Container and
.ContainerConfig.

IMAGE is a name or an image ID (or a prefix of one). --format executes a
Go template for each image, with docker's functions ({{json .Config}},
join, lower, upper...); "json" is the default output.`,
		Args:              minArgs(1),
		ValidArgsFunction: completeImages(g, 0),
		RunE: func(c *cobra.Command, args []string) error {
			p, err := pullPlatform(platform)
			if err != nil {
				return err
			}
			var fm *formatter
			if format != "" && format != "json" {
				if fm, err = parseFormat(format, "", nil); err != nil {
					return err
				}
			}
			return withStore(c, g, func(st *store.Store) error {
				found, errs := inspectImages(c.Context(), st, p, args)
				if fm == nil {
					if err := writeJSONIndented(c.OutOrStdout(), found); err != nil {
						return err
					}
				} else if err := writeInspectTemplate(c.OutOrStdout(), fm, found); err != nil {
					return err
				}
				return errors.Join(errs...)
			})
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "", "format the output with a Go template (json: the default)")
	c.Flags().StringVar(&platform, "platform", "", "inspect this platform of a multi-platform image (os/arch[/variant]; default: this machine's)")
	return c
}

// inspectImages describes the images refs name, and says which it could
// not find or read.
func inspectImages(ctx context.Context, st *store.Store, p ocispec.Platform, refs []string) ([]inspectImage, []error) {
	found := []inspectImage{}
	var errs []error
	var list []store.Summary
	for _, ref := range refs {
		img, err := lookupImage(ctx, st, &list, p, ref)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		res, err := st.Resolve(ctx, img.Name, p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if list == nil {
			if list, err = st.Images(ctx, p); err != nil {
				return found, append(errs, err)
			}
		}
		ii, err := newInspectImage(img, res, list)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		found = append(found, ii)
	}
	return found, errs
}

// writeInspectTemplate executes fm for each image, as docker's inspect
// does: a template that does not fit the typed image (it names a field
// in the JSON's spelling, say) is run again over the image's JSON.
func writeInspectTemplate(w io.Writer, fm *formatter, found []inspectImage) error {
	var buf bytes.Buffer
	for _, ii := range found {
		var one bytes.Buffer
		if err := fm.tmpl.Execute(&one, ii); err != nil {
			b, merr := json.Marshal(ii)
			if merr != nil {
				return merr
			}
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.UseNumber() // sizes print as integers
			var m map[string]any
			if merr := dec.Decode(&m); merr != nil {
				return merr
			}
			one.Reset()
			t, cerr := fm.tmpl.Clone()
			if cerr != nil {
				return cerr
			}
			if err := t.Option("missingkey=error").Execute(&one, m); err != nil {
				return err
			}
		}
		buf.Write(one.Bytes())
		buf.WriteByte('\n')
	}
	_, err := buf.WriteTo(w)
	return err
}
