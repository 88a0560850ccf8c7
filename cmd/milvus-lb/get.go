package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/milvus-lb/milvus-lb/internal/admin"
)

func newGetCmd() *cobra.Command {
	var (
		adminAddr     string
		watch         bool
		allNamespaces bool
		namespace     string
		output        string
	)
	cmd := &cobra.Command{
		Use:   "get ingress [NAME]",
		Short: "List the Ingresses a running milvus-lb serves, with the columns of kubectl get ingress",
		Long: `get ingress asks a running milvus-lb (its admin address) for the Ingresses it serves and
prints NAME CLASS HOSTS ADDRESS PORTS AGE as kubectl does. ADDRESS is where clients should
connect; it stays empty until the Ingress is served. PORTS are the ports actually open.
With -w it keeps printing rows as they change.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch args[0] {
			case "ingress", "ingresses", "ing":
			default:
				return fmt.Errorf("unknown resource type %q: only ingress is served", args[0])
			}
			name := ""
			if len(args) == 2 {
				name = args[1]
			}
			filter := func(rows []admin.IngressRow) []admin.IngressRow {
				var out []admin.IngressRow
				for _, r := range rows {
					if (namespace == "" || r.Namespace == namespace) && (name == "" || r.Name == name) {
						out = append(out, r)
					}
				}
				return out
			}
			url := "http://" + adminAddr + "/api/v1/ingresses"
			if watch {
				url += "?watch=true"
			}
			client := &http.Client{}
			if !watch {
				client.Timeout = 10 * time.Second
			}
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, url, nil)
			if err != nil {
				return err
			}
			resp, err := client.Do(req)
			if err != nil {
				return fmt.Errorf("cannot reach milvus-lb at %s (is it running? see --admin-addr): %w", adminAddr, err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
				return fmt.Errorf("milvus-lb at %s answered %s: %s", adminAddr, resp.Status, strings.TrimSpace(string(b)))
			}
			out := cmd.OutOrStdout()
			dec := json.NewDecoder(bufio.NewReader(resp.Body))
			printed := map[string]admin.IngressRow{}
			header := true
			for {
				var rows []admin.IngressRow
				if err := dec.Decode(&rows); err != nil {
					if err == io.EOF || cmd.Context().Err() != nil {
						return nil
					}
					return fmt.Errorf("reading from milvus-lb: %w", err)
				}
				rows = filter(rows)
				if output == "json" {
					enc := json.NewEncoder(out)
					enc.SetIndent("", "  ")
					if rows == nil {
						rows = []admin.IngressRow{}
					}
					if err := enc.Encode(rows); err != nil {
						return err
					}
				} else {
					// As kubectl -w does: the whole table first, then only the rows that
					// changed.
					var changed []admin.IngressRow
					for _, r := range rows {
						k := r.Namespace + "/" + r.Name
						if old, ok := printed[k]; !ok || !sameRow(old, r) {
							changed = append(changed, r)
							printed[k] = r
						}
					}
					if len(changed) > 0 || header {
						printTable(out, changed, header, allNamespaces, time.Now())
					}
					if header && len(rows) == 0 && !watch {
						fmt.Fprintln(cmd.ErrOrStderr(), "No resources found.")
					}
					header = false
				}
				if !watch {
					return nil
				}
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&adminAddr, "admin-addr", "127.0.0.1:9901", "admin address of the milvus-lb to ask")
	f.BoolVarP(&watch, "watch", "w", false, "after listing, watch for changes")
	f.BoolVarP(&allNamespaces, "all-namespaces", "A", false, "show the NAMESPACE column")
	f.StringVarP(&namespace, "namespace", "n", "", "only this namespace (default: all)")
	f.StringVarP(&output, "output", "o", "", "output format: json (default: table)")
	return cmd
}

func sameRow(a, b admin.IngressRow) bool {
	return reflect.DeepEqual(a, b)
}

func printTable(w io.Writer, rows []admin.IngressRow, header, namespaces bool, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	if header {
		if namespaces {
			fmt.Fprint(tw, "NAMESPACE\t")
		}
		fmt.Fprintln(tw, "NAME\tCLASS\tHOSTS\tADDRESS\tPORTS\tAGE")
	}
	for _, r := range rows {
		if namespaces {
			fmt.Fprintf(tw, "%s\t", r.Namespace)
		}
		hosts := strings.Join(r.Hosts, ",")
		if hosts == "" {
			hosts = "*"
		}
		class := r.Class
		if class == "" {
			class = "<none>"
		}
		ports := make([]string, len(r.Ports))
		for i, p := range r.Ports {
			ports[i] = strconv.Itoa(p)
		}
		age := "<unknown>"
		if !r.Created.IsZero() {
			age = humanDuration(now.Sub(r.Created))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, class, hosts, r.Address, strings.Join(ports, ","), age)
	}
	_ = tw.Flush()
}

// humanDuration prints an age the way kubectl does: 45s, 5m10s, 3h, 2d5h, 400d.
func humanDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d.Seconds())
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 600:
		if s%60 == 0 {
			return fmt.Sprintf("%dm", s/60)
		}
		return fmt.Sprintf("%dm%ds", s/60, s%60)
	case s < 3*3600:
		return fmt.Sprintf("%dm", s/60)
	case s < 8*3600:
		if m := (s % 3600) / 60; m != 0 {
			return fmt.Sprintf("%dh%dm", s/3600, m)
		}
		return fmt.Sprintf("%dh", s/3600)
	case s < 48*3600:
		return fmt.Sprintf("%dh", s/3600)
	case s < 8*24*3600:
		if h := (s % 86400) / 3600; h != 0 {
			return fmt.Sprintf("%dd%dh", s/86400, h)
		}
		return fmt.Sprintf("%dd", s/86400)
	default:
		return fmt.Sprintf("%dd", s/86400)
	}
}
