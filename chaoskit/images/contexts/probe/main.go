// probe is chaoskit's small test workload: an HTTP server that answers with the name of
// the pod it runs in, and the client side used from inside the cluster to check DNS and
// Service routing. It has no dependencies beyond Go's standard library, so it builds
// anywhere the Go toolchain does.
//
//	probe serve [-addr :8080]         answer GET / with "<hostname>\n", /healthz with "ok"
//	            [-hold MIB]           ... while holding MIB of memory, every page written
//	probe resolve NAME                print the addresses NAME resolves to
//	probe get URL [-n N] [-timeout D] GET URL N times, print each body on its own line
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: probe serve|resolve|get ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "resolve":
		err = resolve(os.Args[2:])
	case "get":
		err = get(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(1)
	}
}

// held is what serve -hold keeps resident (a package variable: never collected).
var held []byte

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	addr := fs.String("addr", ":8080", "listen address")
	hold := fs.Int("hold", 0, "MiB of memory to hold while serving")
	if err := fs.Parse(args); err != nil {
		return err
	}
	held = make([]byte, *hold<<20)
	for i := 0; i < len(held); i += 4096 {
		held[i] = 1 // written, so that the pages are resident, not just reserved
	}
	host, _ := os.Hostname()
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, host+"\n")
	})
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		return err
	}
	return nil
}

func resolve(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: probe resolve NAME")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupHost(ctx, args[0])
	if err != nil {
		return err
	}
	fmt.Println(strings.Join(addrs, "\n"))
	return nil
}

func get(args []string) error {
	fs := flag.NewFlagSet("get", flag.ContinueOnError)
	n := fs.Int("n", 1, "number of requests")
	timeout := fs.Duration("timeout", 2*time.Second, "timeout per request")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("usage: probe get [-n N] URL")
	}
	// A new connection per request, so that kube-proxy balances each one.
	client := &http.Client{Timeout: *timeout, Transport: &http.Transport{DisableKeepAlives: true}}
	failures := 0
	for i := 0; i < *n; i++ {
		resp, err := client.Get(fs.Arg(0))
		if err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			failures++
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Print(string(body))
	}
	if failures > 0 {
		return fmt.Errorf("%d of %d requests failed", failures, *n)
	}
	return nil
}
