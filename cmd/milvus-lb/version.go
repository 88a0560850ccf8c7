package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/milvus-lb/milvus-lb/internal/version"
)

// addVersion gives root `--version` and the `version` subcommand; both print the same line.
func addVersion(root *cobra.Command) {
	info := version.Get()
	root.Version = info.String()
	root.SetVersionTemplate("{{.Version}}\n")

	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, the commit and the Go version milvus-lb was built with",
		Long: `Print the release version, the commit built (when the build recorded it; "modified" if
the tree had uncommitted changes) and the Go toolchain and platform. -o json prints the same
with the full commit hash. A container image's org.opencontainers.image.version and
revision labels carry the same version and commit.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch output {
			case "":
				_, err := fmt.Fprintln(cmd.OutOrStdout(), info)
				return err
			case "json":
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "    ")
				return enc.Encode(info)
			default:
				return fmt.Errorf("unknown --output %q: want json, or nothing for one line", output)
			}
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "json for the fields as JSON")
	root.AddCommand(cmd)
}
