// Command tlsfloor measures what an idle TLS connection costs a Go server that does
// nothing but terminate TLS: it completes the handshake and keeps one goroutine blocked
// reading each connection, with a read buffer of -read bytes. That is the least any Go
// server built on crypto/tls holds per connection (crypto/tls reads only from inside
// Read, so each connection needs a goroutine waiting in it), and so the floor under
// milvus-lb's idle figure (the idle workload of bench/cmd/bench, docs/benchmarks.md).
//
//	go run ./bench/cmd/tlsfloor -conns 10000 -hold 12s
//	go run ./bench/cmd/tlsfloor -conns 10000 -tls12
//
// The server is this program again, in a process of its own, with a low collector
// target like milvus-lb's for idle connections (-gogc: 25, what procmem.TuneGC gave
// them when the floor was first measured; it gives them 10 now). The clients send
// what a gRPC client sends on an idle connection: the HTTP/2 preface and SETTINGS, then a
// PING every 10 s (pymilvus' keepalive). The server's resident set is read before and
// after; its live heap and goroutine stacks after a collection.
package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
)

type stats struct {
	HeapInuse, StackInuse, Goroutines uint64
	RSSKiB                            int64
}

func main() {
	var (
		serve = flag.Bool("serve", false, "be the server (started by the measuring process)")
		conns = flag.Int("conns", 10000, "idle connections")
		hold  = flag.Duration("hold", 12*time.Second, "how long they stay open before the server is measured")
		tls12 = flag.Bool("tls12", false, "negotiate TLS 1.2 (the ALB's default policy) instead of TLS 1.3")
		read  = flag.Int("read", 512, "server's read buffer per connection, bytes (milvus-lb's under TLS: 512)")
		gogc  = flag.Int("gogc", 25, "server's GOGC (milvus-lb's with connections quiet: 25)")
	)
	flag.Parse()
	log.SetFlags(log.Ltime)
	if *serve {
		if err := server(*tls12, *read, *gogc); err != nil {
			log.Fatal(err)
		}
		return
	}
	if err := measure(*conns, *hold, *tls12, *read, *gogc); err != nil {
		log.Fatal(err)
	}
}

// server accepts TLS connections and reads each from a goroutine of its own, discarding
// what comes; a line on stdin makes it collect and print its stats as JSON.
func server(tls12 bool, read, gogc int) error {
	debug.SetGCPercent(gogc)
	cert, err := selfSigned()
	if err != nil {
		return err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}}
	if tls12 {
		cfg.MaxVersion = tls.VersionTLS12
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr())
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				if err := c.(*tls.Conn).Handshake(); err != nil {
					c.Close()
					return
				}
				// Read on a new goroutine, as milvus-lb does: this one's stack grew for
				// the handshake (to 8 KiB), and a reader keeps its stack while it waits.
				go func() {
					defer c.Close()
					buf := make([]byte, read)
					for {
						if _, err := c.Read(buf); err != nil {
							return
						}
					}
				}()
			}()
		}
	}()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		// The resident set as the collector left it (as the bench's idle workload reads
		// it), then the live heap and stacks after a collection.
		s := stats{RSSKiB: rss(os.Getpid())}
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		s.HeapInuse, s.StackInuse, s.Goroutines = m.HeapInuse, m.StackInuse, uint64(runtime.NumGoroutine())
		if err := json.NewEncoder(os.Stdout).Encode(s); err != nil {
			return err
		}
	}
	return nil
}

func measure(n int, hold time.Duration, tls12 bool, read, gogc int) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	args := []string{"-serve", "-read", strconv.Itoa(read), "-gogc", strconv.Itoa(gogc)}
	if tls12 {
		args = append(args, "-tls12")
	}
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	out := bufio.NewScanner(stdout)
	if !out.Scan() {
		return fmt.Errorf("server: no address")
	}
	addr := strings.TrimSpace(out.Text())
	ask := func() (stats, error) {
		var s stats
		if _, err := io.WriteString(stdin, "\n"); err != nil {
			return s, err
		}
		if !out.Scan() {
			return s, fmt.Errorf("server: no stats")
		}
		err := json.Unmarshal(out.Bytes(), &s)
		return s, err
	}
	before, err := ask()
	if err != nil {
		return err
	}
	cs, err := dial(addr, n)
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	if err != nil {
		return err
	}
	stop := make(chan struct{})
	defer close(stop)
	go ping(cs, stop)
	time.Sleep(hold)
	after, err := ask()
	if err != nil {
		return err
	}
	per := func(a, b uint64) float64 { return float64(int64(b)-int64(a)) / float64(n) / 1024 }
	version := "TLS 1.3"
	if tls12 {
		version = "TLS 1.2"
	}
	fmt.Printf("%d idle %s connections, read buffer %d B, GOGC %d: RSS %.1f KiB per connection; live heap %.1f KiB, goroutine stacks %.1f KiB (after a collection)\n",
		n, version, read, gogc, float64(after.RSSKiB-before.RSSKiB)/float64(n), per(before.HeapInuse, after.HeapInuse), per(before.StackInuse, after.StackInuse))
	return nil
}

// preface is what a gRPC client sends first: the HTTP/2 preface and an empty SETTINGS.
var preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")

// pingFrame is an HTTP/2 PING with 8 bytes of opaque data.
var pingFrame = []byte("\x00\x00\x08\x06\x00\x00\x00\x00\x00bench-pi")

func dial(addr string, n int) ([]*tls.Conn, error) {
	cfg := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}, ServerName: "milvus-demo.milvus.io"} // loopback, a certificate made here
	cs := make([]*tls.Conn, 0, n)
	var mu sync.Mutex
	var first error
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			c, err := tls.Dial("tcp", addr, cfg)
			if err == nil {
				_, err = c.Write(preface)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if first == nil {
					first = err
				}
				return
			}
			cs = append(cs, c)
		}()
	}
	wg.Wait()
	return cs, first
}

// ping sends each connection a PING every 10 s, spread over the interval.
func ping(cs []*tls.Conn, stop chan struct{}) {
	const every = 10 * time.Second
	tick := time.NewTicker(every / time.Duration(max(1, len(cs))))
	defer tick.Stop()
	for i := 0; ; i = (i + 1) % len(cs) {
		select {
		case <-stop:
			return
		case <-tick.C:
			_, _ = cs[i].Write(pingFrame)
		}
	}
}

func rss(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{"milvus-demo.milvus.io"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
