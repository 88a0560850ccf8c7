// Command imagebuild assembles the milvus-lb container image from binaries already built
// (scripts/release.sh builds them; scripts/image.sh runs both), without a container daemon
// or a base image: one layer holding the static binary, on top of nothing (FROM scratch).
//
// It writes an OCI image layout directory (an index of one image per platform, tagged with
// the version) and, optionally, the same layout as a tar archive, and prints the index's
// digest. Nothing in the output depends on the time or the machine of the build: every
// timestamp is -epoch (SOURCE_DATE_EPOCH, the commit's time), so two builds of the same
// binaries give the same digest.
//
//	imagebuild -out DIR [-archive FILE] -version V -revision COMMIT -source URL -epoch SECONDS \
//	    -binary linux/amd64=PATH -binary linux/arm64=PATH
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "imagebuild:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("imagebuild", flag.ContinueOnError)
	var (
		m        meta
		out      = fs.String("out", "", "directory to write the OCI image layout to (replaced)")
		archive  = fs.String("archive", "", "also write the layout as this tar file")
		epoch    = fs.Int64("epoch", -1, "every timestamp in the image, in seconds since 1970 (SOURCE_DATE_EPOCH)")
		binaries binaryFlags
	)
	fs.StringVar(&m.version, "version", "", "the release version: image tag and version label")
	fs.StringVar(&m.revision, "revision", "", "the commit built: revision label")
	fs.StringVar(&m.source, "source", "", "the repository URL: source label")
	fs.Var(&binaries, "binary", "OS/ARCH=PATH of a static milvus-lb binary (repeat per platform)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *out == "":
		return errors.New("-out is required")
	case m.version == "" || m.revision == "" || m.source == "":
		return errors.New("-version, -revision and -source are required")
	case *epoch < 0:
		return errors.New("-epoch is required (the commit time: git log -1 --format=%ct)")
	case len(binaries) == 0:
		return errors.New("at least one -binary OS/ARCH=PATH is required")
	}
	m.created = time.Unix(*epoch, 0).UTC()

	idx, err := buildIndex(m, binaries)
	if err != nil {
		return err
	}
	if err := writeLayout(*out, idx, m.version); err != nil {
		return err
	}
	if *archive != "" {
		if err := writeArchive(*archive, *out, m.created); err != nil {
			return err
		}
	}
	digest, err := idx.Digest()
	if err != nil {
		return err
	}
	fmt.Println(digest)
	return nil
}

// binaryFlags collects -binary OS/ARCH=PATH in the order given.
type binaryFlags []binary

type binary struct{ os, arch, path string }

func (b *binaryFlags) String() string { return fmt.Sprint(*b) }

func (b *binaryFlags) Set(v string) error {
	platform, path, ok := strings.Cut(v, "=")
	goos, arch, ok2 := strings.Cut(platform, "/")
	if !ok || !ok2 || path == "" || goos == "" || arch == "" {
		return fmt.Errorf("%q: want OS/ARCH=PATH, e.g. linux/amd64=dist/milvus-lb-0.1.0-linux-amd64", v)
	}
	for _, have := range *b {
		if have.os == goos && have.arch == arch {
			return fmt.Errorf("%s/%s given twice", goos, arch)
		}
	}
	*b = append(*b, binary{os: goos, arch: arch, path: path})
	return nil
}
