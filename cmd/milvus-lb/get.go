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

// getOptions are the flags and arguments of `milvus-lb get ingress`.
type getOptions struct {
	adminAddr     string
	watch         bool
	allNamespaces bool
	namespace     string
	output        string
	name          string
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
			if len(args) == 2 {
				o.name = args[1]
			}
			return o.run(cmd)
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

// run asks the admin address for the Ingresses (a stream of lists with -w) and prints them.
func (o *getOptions) run(cmd *cobra.Command) error {
	url := "http://" + o.adminAddr + "/api/v1/ingresses"
	client := &http.Client{Timeout: 10 * time.Second}
	if o.watch {
		url += "?watch=true"
		client.Timeout = 0
	}
	req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach milvus-lb at %s (is it running? see --admin-addr): %w", o.adminAddr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("milvus-lb at %s answered %s: %s", o.adminAddr, resp.Status, strings.TrimSpace(string(b)))
	}
	dec := json.NewDecoder(bufio.NewReader(resp.Body))
	p := &rowPrinter{o: o, cmd: cmd, printed: map[string]admin.IngressRow{}, header: true}
	for {
		var rows []admin.IngressRow
		if err := dec.Decode(&rows); err != nil {
			if err == io.EOF || cmd.Context().Err() != nil {
				return nil
			}
			return fmt.Errorf("reading from milvus-lb: %w", err)
		}
		if err := p.print(o.filter(rows)); err != nil || !o.watch {
			return err
		}
	}
}

// filter keeps the rows of the namespace and name asked for.
func (o *getOptions) filter(rows []admin.IngressRow) []admin.IngressRow {
	var out []admin.IngressRow
	for _, r := range rows {
		if (o.namespace == "" || r.Namespace == o.namespace) && (o.name == "" || r.Name == o.name) {
			out = append(out, r)
		}
	}
	return out
}

// rowPrinter prints successive lists of rows as kubectl does: JSON each time, or the
// whole table first and then only the rows that changed.
type rowPrinter struct {
	o       *getOptions
	cmd     *cobra.Command
	printed map[string]admin.IngressRow
	header  bool
}

func (p *rowPrinter) print(rows []admin.IngressRow) error {
	out := p.cmd.OutOrStdout()
	if p.o.output == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if rows == nil {
			rows = []admin.IngressRow{}
		}
		return enc.Encode(rows)
	}
	var changed []admin.IngressRow
	for _, r := range rows {
		k := r.Namespace + "/" + r.Name
		if old, ok := p.printed[k]; !ok || !sameRow(old, r) {
			changed = append(changed, r)
			p.printed[k] = r
		}
	}
	if len(changed) > 0 || p.header {
		printTable(out, changed, p.header, p.o.allNamespaces, time.Now())
	}
	if p.header && len(rows) == 0 && !p.o.watch {
		fmt.Fprintln(p.cmd.ErrOrStderr(), "No resources found.")
	}
	p.header = false
	return nil
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
