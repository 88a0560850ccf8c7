package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// What every platform's image is. The Dockerfile at the repository root says the same for
// those who build with Docker; test/image checks that the two agree.
const (
	// binaryPath is where the binary lives in the image, and the entrypoint.
	binaryPath = "/usr/bin/milvus-lb"
	// user is the numeric user and group the entrypoint runs as: the conventional
	// "nonroot" of distroless images, and what deploy/ sets as runAsUser/runAsGroup.
	user = "65532:65532"
	// defaultPath is the PATH a Docker build of a FROM scratch image records.
	defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// meta is what the labels and annotations say.
type meta struct {
	version, revision, source string
	created                   time.Time
}

// labels are the OCI annotation keys, as image config labels (what `podman inspect` and
// `docker inspect` show) and as annotations of the index (what registries show).
func (m meta) labels() map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":    "milvus-lb",
		"org.opencontainers.image.source":   m.source,
		"org.opencontainers.image.revision": m.revision,
		"org.opencontainers.image.version":  m.version,
		"org.opencontainers.image.created":  m.created.Format(time.RFC3339),
	}
}

// buildIndex makes one image per binary and the index that lists them by platform.
func buildIndex(m meta, binaries []binary) (v1.ImageIndex, error) {
	adds := make([]mutate.IndexAddendum, 0, len(binaries))
	for _, b := range binaries {
		img, err := platformImage(m, b)
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %w", b.os, b.arch, err)
		}
		adds = append(adds, mutate.IndexAddendum{
			Add:        plainImage{img},
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: b.os, Architecture: b.arch}},
		})
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	idx = mutate.AppendManifests(idx, adds...)
	return mutate.Annotations(idx, m.labels()).(v1.ImageIndex), nil
}

// plainImage is an image whose descriptor in the index has no artifactType. Left to
// itself, go-containerregistry copies the config's media type there (OCI 1.1 allows it);
// tools that predate OCI 1.1, such as Debian 12's skopeo, then rewrite the index on copy,
// and the pushed digest is no longer the built one.
type plainImage struct{ v1.Image }

func (plainImage) ArtifactType() (string, error) { return "", nil }

// platformImage is the image of one binary: a single layer, the config above, every
// timestamp m.created.
func platformImage(m meta, b binary) (v1.Image, error) {
	layerTar, err := binaryLayer(b.path, m.created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: m.created},
			CreatedBy: "milvus-lb " + m.version + " (scripts/image.sh)",
		},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = b.os, b.arch
	cf.Created = v1.Time{Time: m.created}
	cf.Config = v1.Config{
		User:       user,
		Entrypoint: []string{binaryPath},
		Env:        []string{defaultPath},
		Labels:     m.labels(),
	}
	return mutate.ConfigFile(img, cf)
}

// binaryLayer is an uncompressed layer tar holding the binary at binaryPath, owned by root
// and not writable by the user it runs as, and its parent directories.
func binaryLayer(path string, mtime time.Time) ([]byte, error) {
	bin, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	entries := []struct {
		hdr  tar.Header
		data []byte
	}{
		{tar.Header{Typeflag: tar.TypeDir, Name: "usr/", Mode: 0o755}, nil},
		{tar.Header{Typeflag: tar.TypeDir, Name: "usr/bin/", Mode: 0o755}, nil},
		{tar.Header{Typeflag: tar.TypeReg, Name: binaryPath[1:], Mode: 0o755, Size: int64(len(bin))}, bin},
	}
	for _, e := range entries {
		e.hdr.ModTime = mtime
		e.hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(&e.hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeLayout replaces dir with an OCI image layout holding idx, tagged tag (the
// org.opencontainers.image.ref.name annotation that `skopeo copy oci:DIR:TAG` and
// `podman pull oci:DIR:TAG` select by).
func writeLayout(dir string, idx v1.ImageIndex, tag string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	return p.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": tag,
	}))
}
