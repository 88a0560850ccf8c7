package e2e

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ociLayout reads an OCI image layout directory (what scripts/image.sh writes) with the
// standard library only, as the specification describes it: index.json names the
// content, and every blob is at blobs/<algorithm>/<hex>.
type ociLayout struct {
	t   *testing.T
	dir string
}

// ociDescriptor is a descriptor: what a manifest or index says about another blob.
type ociDescriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations"`
	Platform    *struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
	} `json:"platform"`
}

// ociIndex is an image index (index.json is one too).
type ociIndex struct {
	MediaType   string            `json:"mediaType"`
	Manifests   []ociDescriptor   `json:"manifests"`
	Annotations map[string]string `json:"annotations"`
}

// ociManifest is one platform's image manifest.
type ociManifest struct {
	MediaType string          `json:"mediaType"`
	Config    ociDescriptor   `json:"config"`
	Layers    []ociDescriptor `json:"layers"`
}

// ociConfig is the part of an image configuration a runtime acts on.
type ociConfig struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Config       struct {
		User       string
		Entrypoint []string
		Cmd        []string
		Env        []string
		Labels     map[string]string
	} `json:"config"`
}

func (l ociLayout) blob(digest string) []byte {
	l.t.Helper()
	algo, hex, ok := strings.Cut(digest, ":")
	if !ok {
		l.t.Fatalf("%s: %q is not a digest", l.dir, digest)
	}
	b, err := os.ReadFile(filepath.Join(l.dir, "blobs", algo, hex))
	if err != nil {
		l.t.Fatalf("%s: %v", l.dir, err)
	}
	return b
}

func (l ociLayout) json(path string, v any) {
	l.t.Helper()
	var b []byte
	if strings.HasPrefix(path, "sha256:") {
		b = l.blob(path)
	} else {
		var err error
		if b, err = os.ReadFile(filepath.Join(l.dir, path)); err != nil {
			l.t.Fatal(err)
		}
	}
	if err := json.Unmarshal(b, v); err != nil {
		l.t.Fatalf("%s %s: %v", l.dir, path, err)
	}
}

// layerFiles lists a gzip-compressed layer: each entry's name and, for regular files, its
// content.
func (l ociLayout) layerFiles(digest string) (names []string, files map[string][]byte) {
	l.t.Helper()
	blob, err := os.Open(filepath.Join(l.dir, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:")))
	if err != nil {
		l.t.Fatal(err)
	}
	defer blob.Close()
	zr, err := gzip.NewReader(blob)
	if err != nil {
		l.t.Fatalf("layer %s: %v", digest, err)
	}
	files = map[string][]byte{}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return names, files
		}
		if err != nil {
			l.t.Fatalf("layer %s: %v", digest, err)
		}
		names = append(names, hdr.Name)
		if hdr.Typeflag == tar.TypeReg {
			if files[hdr.Name], err = io.ReadAll(tr); err != nil {
				l.t.Fatal(err)
			}
		}
	}
}
