package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/milvus-lb/milvus-lb/internal/certs"
)

// newCertCmd is `milvus-lb cert`: the standalone analogue of the guide's
// `aws acm import-certificate`, whose ARN goes into the certificate-arn annotation.
func newCertCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cert",
		Short: "Import and list the TLS certificates that certificate-arn annotations name",
	}
	cmd.AddCommand(newCertImportCmd(), newCertListCmd(), newCertDeleteCmd())
	return cmd
}

func newCertImportCmd() *cobra.Command {
	var (
		certFile, chainFile, keyFile string
		stateDir                     string
		kubeconfig, namespace        string
	)
	cmd := &cobra.Command{
		Use:   "import --certificate fileb://Certificate.pem [--certificate-chain fileb://CertificateChain.pem] --private-key fileb://PrivateKey.pem",
		Short: "Validate and store a certificate, and print its ARN",
		Long: `Validate and store a certificate, its chain and its private key, and print the ARN to
put in the alb.ingress.kubernetes.io/certificate-arn annotation, as
'aws acm import-certificate' does. The flags take paths, with or without the AWS CLI's
fileb:// or file:// prefix, so the guide's command works with 'aws acm' replaced by
'milvus-lb cert'.

The key must match the certificate, the certificate must be valid now, and the chain must
verify it. The chain may be left out only for a self-signed certificate. The ARN depends
only on the certificate: importing the same one again gives the same ARN.

Certificates are stored in --state-dir for 'milvus-lb serve' (which picks up new ones
while it runs), or with --kubeconfig as a kubernetes.io/tls Secret for 'milvus-lb
controller'. Nothing is stored if validation fails.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			certPEM, err := readFileArg("--certificate", certFile)
			if err != nil {
				return err
			}
			var chainPEM []byte
			if chainFile != "" {
				if chainPEM, err = readFileArg("--certificate-chain", chainFile); err != nil {
					return err
				}
			}
			keyPEM, err := readFileArg("--private-key", keyFile)
			if err != nil {
				return err
			}
			c, err := certs.Import(certPEM, chainPEM, keyPEM, time.Now())
			if err != nil {
				return err
			}
			if kubeconfig != "" {
				if err := importToCluster(cmd.Context(), kubeconfig, namespace, c); err != nil {
					return err
				}
			} else {
				store, err := openStore(stateDir)
				if err != nil {
					return err
				}
				if err := store.Save(c); err != nil {
					return err
				}
			}
			return writeJSON(cmd.OutOrStdout(), struct {
				CertificateArn string
			}{c.ARN})
		},
	}
	f := cmd.Flags()
	f.StringVar(&certFile, "certificate", "", "PEM file of the certificate (fileb://PATH, file://PATH or PATH)")
	f.StringVar(&chainFile, "certificate-chain", "", "PEM file of the intermediate and root certificates")
	f.StringVar(&keyFile, "private-key", "", "PEM file of the unencrypted private key")
	f.StringVar(&stateDir, "state-dir", "", "state directory to store the certificate in (default "+defaultStateDirHelp()+")")
	f.StringVar(&kubeconfig, "kubeconfig", "", "store the certificate as a Secret in this cluster instead of --state-dir")
	f.StringVar(&namespace, "namespace", "", "with --kubeconfig: the controller's namespace (default milvus-lb-system)")
	_ = cmd.MarkFlagRequired("certificate") // fails only for an undefined flag
	_ = cmd.MarkFlagRequired("private-key")
	cmd.MarkFlagsMutuallyExclusive("state-dir", "kubeconfig")
	return cmd
}

// readFileArg reads a file named as the AWS CLI names them: fileb://PATH or file://PATH,
// or, since nothing here takes inline PEM, just PATH.
func readFileArg(flag, arg string) ([]byte, error) {
	path := arg
	for _, p := range []string{"fileb://", "file://"} {
		if rest, ok := strings.CutPrefix(arg, p); ok {
			path = rest
			break
		}
	}
	if path == "" {
		return nil, fmt.Errorf("%s: no file given", flag)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	return data, nil
}

// certSummary is one certificate in `cert list -o json`, named as in the output of
// `aws acm list-certificates`, so scripts written for it need few changes.
type certSummary struct {
	CertificateArn                  string
	DomainName                      string
	SubjectAlternativeNameSummaries []string
	Subject                         string
	NotBefore, NotAfter, ImportedAt time.Time
	Status                          string // ISSUED or EXPIRED
}

func newCertListCmd() *cobra.Command {
	var stateDir, output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the certificates in the state directory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("--output %q: want table or json", output)
			}
			store, err := openStore(stateDir)
			if err != nil {
				return err
			}
			// A certificate that cannot be read is reported after the others are shown.
			list, listErr := store.List()
			now := time.Now()
			out := cmd.OutOrStdout()
			if output == "json" {
				summaries := make([]certSummary, 0, len(list))
				for _, c := range list {
					summaries = append(summaries, certSummary{
						CertificateArn:                  c.ARN,
						DomainName:                      domainName(c),
						SubjectAlternativeNameSummaries: c.SANs(),
						Subject:                         c.Subject(),
						NotBefore:                       c.Leaf.NotBefore.UTC(),
						NotAfter:                        c.NotAfter().UTC(),
						ImportedAt:                      c.ImportedAt.UTC(),
						Status:                          status(c, now),
					})
				}
				if err := writeJSON(out, struct{ CertificateSummaryList []certSummary }{summaries}); err != nil {
					return err
				}
				return listErr
			}
			if len(list) == 0 && listErr == nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "No certificates in %s.\n", store.Dir())
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 8, 3, ' ', 0)
			fmt.Fprintln(tw, "ARN\tSUBJECT\tSANS\tEXPIRES")
			for _, c := range list {
				expires := c.NotAfter().UTC().Format(time.RFC3339)
				if status(c, now) == "EXPIRED" {
					expires += " (expired)"
				}
				sans := strings.Join(c.SANs(), ",")
				if sans == "" {
					sans = "<none>"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.ARN, c.Subject(), sans, expires)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			return listErr
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", "", "state directory holding imported certificates (default "+defaultStateDirHelp()+")")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

func newCertDeleteCmd() *cobra.Command {
	var stateDir, arn string
	cmd := &cobra.Command{
		Use:   "delete --certificate-arn ARN",
		Short: "Delete a certificate from the state directory, as 'aws acm delete-certificate' does",
		Long: `Delete a certificate from the state directory. A running 'milvus-lb serve' notices at
once; an Ingress that still names the ARN is then reported as naming a certificate that
is not found.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, err := openStore(stateDir)
			if err != nil {
				return err
			}
			return store.Delete(arn)
		},
	}
	cmd.Flags().StringVar(&arn, "certificate-arn", "", "ARN printed by 'cert import'")
	cmd.Flags().StringVar(&stateDir, "state-dir", "", "state directory holding imported certificates (default "+defaultStateDirHelp()+")")
	_ = cmd.MarkFlagRequired("certificate-arn")
	return cmd
}

// domainName is what ACM shows as a certificate's domain: its first DNS name, else its CN.
func domainName(c *certs.Certificate) string {
	if len(c.Leaf.DNSNames) > 0 {
		return c.Leaf.DNSNames[0]
	}
	return c.Leaf.Subject.CommonName
}

func status(c *certs.Certificate, now time.Time) string {
	if now.After(c.NotAfter()) {
		return "EXPIRED"
	}
	return "ISSUED"
}

// writeJSON prints v indented by four spaces, as the AWS CLI prints its answers.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
