package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// IngressRow is one row of `milvus-lb get ingress -o json`, decoded the way a user's script
// would: from the documented JSON, not from milvus-lb's Go types, so that the end-to-end tests
// check the contract and build even while the data path is being edited.
type IngressRow struct {
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	Class     string    `json:"class"`
	Hosts     []string  `json:"hosts"`
	Address   string    `json:"address"`
	Ports     []int     `json:"ports"`
	Created   time.Time `json:"created"`
	Served    bool      `json:"served"`
}

// LB is a running `milvus-lb serve`.
type LB struct {
	*Process
	Bin       string
	AdminAddr string
}

// StartLB runs `milvus-lb serve args...` and waits until it serves its first
// configuration (the admin /readyz answers 200). Unless args set them, it adds
// --admin-addr on a free loopback port, --bind-address 127.0.0.1 and
// --advertise-address 127.0.0.1, so that nothing listens beyond loopback. When the test
// ends, the balancer gets SIGTERM and must exit 0; its output is logged if the test failed.
func StartLB(t testing.TB, args ...string) *LB {
	t.Helper()
	bin := BuildMilvusLB(t)
	admin := flagValue(args, "--admin-addr")
	if admin == "" {
		admin = "127.0.0.1:" + strconv.Itoa(FreePort(t))
		args = append(args, "--admin-addr", admin)
	}
	if flagValue(args, "--bind-address") == "" {
		args = append(args, "--bind-address", "127.0.0.1")
	}
	if flagValue(args, "--advertise-address") == "" {
		args = append(args, "--advertise-address", "127.0.0.1")
	}
	c := exec.Command(bin, append([]string{"serve"}, args...)...)
	t.Logf("$ milvus-lb serve %s", strings.Join(args, " "))
	p := startProcess(t, "milvus-lb", c, syscall.SIGTERM, 30*time.Second, true)
	lb := &LB{Process: p, Bin: bin, AdminAddr: admin}
	if err := waitFor(30*time.Second, p.Exited(), lb.ready); err != nil {
		t.Fatalf("milvus-lb serve did not become ready: %v\n%s", err, p.Logs())
	}
	return lb
}

func (lb *LB) ready() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+lb.AdminAddr+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/readyz: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}

// Ingresses runs `milvus-lb get ingress -o json` against this balancer, as a user would.
func (lb *LB) Ingresses(t testing.TB) []IngressRow {
	t.Helper()
	out := MilvusLB(t, "get", "ingress", "-o", "json", "--admin-addr", lb.AdminAddr)
	var rows []IngressRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("get ingress -o json printed something that is not a JSON list: %v\n%s", err, out)
	}
	return rows
}

// WaitAddress polls `get ingress` until the Ingress namespace/name has an ADDRESS (the
// guide's "wait until ADDRESS fills in") and returns its row.
func (lb *LB) WaitAddress(t testing.TB, namespace, name string) IngressRow {
	t.Helper()
	var row IngressRow
	err := waitFor(30*time.Second, lb.Exited(), func() error {
		for _, r := range lb.Ingresses(t) {
			if r.Namespace == namespace && r.Name == name {
				row = r
				if r.Address != "" {
					return nil
				}
				return fmt.Errorf("ingress %s/%s has no ADDRESS yet: %+v", namespace, name, r)
			}
		}
		return fmt.Errorf("ingress %s/%s not listed", namespace, name)
	})
	if err != nil {
		t.Fatalf("%v", err)
	}
	return row
}

// MilvusLB runs a milvus-lb command to completion (cert import, validate, get ...) and
// returns its standard output; it fails the test if the command fails.
func MilvusLB(t testing.TB, args ...string) string {
	t.Helper()
	stdout, stderr, err := RunMilvusLB(t, args...)
	if err != nil {
		t.Fatalf("milvus-lb %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout
}

// RunMilvusLB runs a milvus-lb command to completion and returns what it printed and its
// error, for tests that expect a failure.
func RunMilvusLB(t testing.TB, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	bin := BuildMilvusLB(t) // first: a build (40 s on a busy machine) is not the command's time
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, bin, args...)
	var o, e bytes.Buffer
	c.Stdout, c.Stderr = &o, &e
	err = c.Run()
	return o.String(), e.String(), err
}

// flagValue returns the value given to flag in args ("--flag v" or "--flag=v"), or "".
func flagValue(args []string, flag string) string {
	if i := slices.Index(args, flag); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}
