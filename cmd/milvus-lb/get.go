package main

import (
	"bufio"
	"context"
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

// getOptions are the flags of get ingress.
type getOptions struct {
	adminAddr     string
	watch         bool
	allNamespaces bool
	namespace     string
	output        string
}

func newGetCmd() *cobra.Command {
	var o getOptions
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
			return getIngress(cmd, o, name)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.adminAddr, "admin-addr", "127.0.0.1:9901", "admin address of the milvus-lb to ask")
	f.BoolVarP(&o.watch, "watch", "w", false, "after listing, watch for changes")
	f.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "show the NAMESPACE column")
	f.StringVarP(&o.namespace, "namespace", "n", "", "only this namespace (default: all)")
	f.StringVarP(&o.output, "output", "o", "", "output format: json (default: table)")
	return cmd
}

// getIngress prints the Ingresses named name (all if "") that the balancer at
// o.adminAddr lists, and with o.watch every change after that until the command's
// context ends.
func getIngress(cmd *cobra.Command, o getOptions, name string) error {
	body, err := ingressStream(cmd.Context(), o)
	if err != nil {
		return err
	}
	defer body.Close()
	out := cmd.OutOrStdout()
	dec := json.NewDecoder(bufio.NewReader(body))
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
		rows = filterRows(rows, o.namespace, name)
		if o.output == "json" {
			if err := printJSON(out, rows); err != nil {
				return err
			}
		} else {
			// As kubectl -w does: the whole table first, then only the rows that changed.
			var changed []admin.IngressRow
			for _, r := range rows {
				k := r.Namespace + "/" + r.Name
				if old, ok := printed[k]; !ok || !sameRow(old, r) {
					changed = append(changed, r)
					printed[k] = r
				}
			}
			if len(changed) > 0 || header {
				printTable(out, changed, header, o.allNamespaces, time.Now())
			}
			if header && len(rows) == 0 && !o.watch {
				fmt.Fprintln(cmd.ErrOrStderr(), "No resources found.")
			}
			header = false
		}
		if !o.watch {
			return nil
		}
	}
}

// ingressStream asks the admin API for the list (one JSON list), or with o.watch for the
// stream of lists (one per change).
func ingressStream(ctx context.Context, o getOptions) (io.ReadCloser, error) {
	url := "http://" + o.adminAddr + "/api/v1/ingresses"
	client := &http.Client{}
	if o.watch {
		url += "?watch=true"
	} else {
		client.Timeout = 10 * time.Second
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach milvus-lb at %s (is it running? see --admin-addr): %w", o.adminAddr, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("milvus-lb at %s answered %s: %s", o.adminAddr, resp.Status, strings.TrimSpace(string(b)))
	}
	return resp.Body, nil
}

func filterRows(rows []admin.IngressRow, namespace, name string) []admin.IngressRow {
	var out []admin.IngressRow
	for _, r := range rows {
		if (namespace == "" || r.Namespace == namespace) && (name == "" || r.Name == name) {
			out = append(out, r)
		}
	}
	return out
}

func printJSON(w io.Writer, rows []admin.IngressRow) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if rows == nil {
		rows = []admin.IngressRow{}
	}
	return enc.Encode(rows)
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
