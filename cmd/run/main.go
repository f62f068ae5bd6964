// Command run is `make run`: it starts the registrar, the dev proxy on envoy.yaml (or
// Envoy itself when an `envoy` binary is on PATH), two demo target servers and a demo
// app/SPA server for envoy.yaml's other clusters, all on loopback, registers the first
// demo server, prints the curl lines to try, and stops everything on Ctrl-C. It runs
// from the repo's root (the Makefile does), where envoy.yaml is.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "run:", err)
		os.Exit(1)
	}
}

type ports struct{ proxy, admin, registrar, demoA, demoB, app string }

func run() error {
	bin := flag.String("bin", "bin", "folder with filter.wasm, registrar and devproxy")
	data := flag.String("data", "data/servers.json", "the registrar's data file (kept between runs)")
	token := flag.String("token", "", "registrar token (empty: writes open, as a dev setup)")
	flag.Parse()
	p := ports{proxy: "127.0.0.1:8080", admin: "127.0.0.1:9901", registrar: "127.0.0.1:9000", demoA: "127.0.0.1:9101", demoB: "127.0.0.1:9102", app: "127.0.0.1:9103"}
	for _, a := range []string{p.proxy, p.admin, p.registrar, p.demoA, p.demoB, p.app} {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			return fmt.Errorf("%s is taken (%v); stop whatever listens there and retry", a, err)
		}
		ln.Close()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	for addr, h := range map[string]http.Handler{p.demoA: demoHandler("demo-a"), p.demoB: demoHandler("demo-b"), p.app: appHandler()} {
		srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}
		go srv.ListenAndServe()
		defer srv.Close()
	}

	var procs []*exec.Cmd
	defer func() { // the proxy first, so its sync does not see the registrar go away
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].Process.Signal(syscall.SIGTERM)
			procs[i].Wait()
		}
	}()
	start := func(name string, args ...string) error {
		c := exec.Command(name, args...)
		c.Stdout, c.Stderr = prefixed(filepath.Base(name)), prefixed(filepath.Base(name))
		if err := c.Start(); err != nil {
			return err
		}
		procs = append(procs, c)
		return nil
	}

	regArgs := []string{"-listen", p.registrar, "-data", *data, "-allow-cidr", "127.0.0.0/8"}
	if *token != "" {
		regArgs = append(regArgs, "-token", *token)
	}
	if err := start(filepath.Join(*bin, "registrar"), regArgs...); err != nil {
		return err
	}
	if err := waitHTTP(ctx, "http://"+p.registrar+"/healthz"); err != nil {
		return fmt.Errorf("registrar did not come up: %w", err)
	}

	proxyName := "dev proxy"
	if envoy, err := exec.LookPath("envoy"); err == nil {
		cfg, err := envoyConfig(*bin)
		if err != nil {
			return err
		}
		proxyName = "Envoy (" + envoy + ")"
		// The node id names the proxy in the registrar's /api/proxies.
		if err := start(envoy, "-c", cfg, "--log-level", "info", "--service-node", "envoy-"+port(p.proxy)); err != nil {
			return err
		}
	} else if err := start(filepath.Join(*bin, "devproxy"), "-listen", p.proxy, "-admin", p.admin, "-config", "envoy.yaml",
		"-wasm", filepath.Join(*bin, "filter.wasm"), "-registrar", "http://"+p.registrar, "-upstream", "http://"+p.app,
		"-allow-cidr", "127.0.0.0/8", // the demo targets are on this machine
		"-node-id", "devproxy-"+port(p.proxy)); err != nil { // its name in /api/proxies
		return err
	}
	if err := waitHTTP(ctx, "http://"+p.admin+"/ready"); err != nil {
		return fmt.Errorf("%s did not come up: %w", proxyName, err)
	}

	body := `{"host":"demo-a","ipAddress":"` + p.demoA + `","serviceName":"demo"}`
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+p.registrar+"/api/servers/register", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if *token != "" {
		req.Header.Set("Authorization", "Bearer "+*token)
	}
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		return fmt.Errorf("registering demo-a failed: %v %v", err, resp)
	}

	fmt.Printf(`
Switchyard is up (%s on %s, registrar on %s). demo-a is registered; try:

  curl -i http://%[2]s/sys/hello -H 'X-Server-Name: demo-a'        # routed to demo-a
  curl -i http://%[2]s/sys/hello                                    # 400 missing_server_name
  curl -i http://%[2]s/sys/hello -H 'X-Server-Name: demo-b'        # 404 unknown_server
  curl -i -X POST http://%[2]s/api/servers/register -H 'Content-Type: application/json' \
       -d '{"host":"demo-b","ipAddress":"%[4]s","serviceName":"demo"}'
  curl -i http://%[2]s/sys/hello -H 'X-Server-Name: demo-b'        # now routed to demo-b
  curl -i -X DELETE http://%[2]s/api/servers/demo-b
  curl http://%[5]s/stats                                             # the filter's metrics
  curl -i -X OPTIONS http://%[2]s/api/servers -H 'Origin: https://cms.example.com' \
       -H 'Access-Control-Request-Method: POST'                       # CORS preflight, answered by the proxy
  curl -i http://%[2]s/some/page                                    # the SPA (index.html for any path)

Server-management page: http://%[3]s/      Ctrl-C stops everything.
`, proxyName, p.proxy, p.registrar, p.demoB, p.admin)

	<-ctx.Done()
	fmt.Println("\nstopping")
	return nil
}

// demoHandler answers with who it is and what it received, so routing is visible.
func demoHandler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s: %s %s (Host: %s, X-Forwarded-Host: %s)\n",
			name, r.Method, r.URL.RequestURI(), r.Host, r.Header.Get("X-Forwarded-Host"))
	})
}

// appHandler stands in for envoy.yaml's app (/stomp) and frontend (SPA) clusters
// when the dev proxy runs: index.html for every page, as the SPA's server must.
func appHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/stomp") {
			fmt.Fprintf(w, "demo app: %s %s\n", r.Method, r.URL.RequestURI())
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><title>demo SPA</title><p>index.html for %s</p>\n", html.EscapeString(r.URL.Path))
	})
}

func waitHTTP(ctx context.Context, url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return errors.New("no 200 from " + url + " within 30 s")
}

// envoyConfig writes envoy.yaml with the filter path pointing at the built module and
// loopback targets allowed.
func envoyConfig(bin string) (string, error) {
	src, err := os.ReadFile("envoy.yaml")
	if err != nil {
		return "", err
	}
	abs, err := filepath.Abs(filepath.Join(bin, "filter.wasm"))
	if err != nil {
		return "", err
	}
	out := filepath.Join(os.TempDir(), "switchyard-envoy.yaml")
	text := strings.ReplaceAll(string(src), "/etc/envoy/filter.wasm", abs)
	// The demo targets are on this machine: let the DNS cache keep loopback addresses.
	text = strings.Replace(text, "- { address_prefix: 127.0.0.0, prefix_len: 8 }", "# (loopback allowed by make run)", 1)
	return out, os.WriteFile(out, []byte(text), 0o644)
}

// prefixed writes a child's output line by line with its name in front.
func prefixed(name string) io.Writer {
	pr, pw := io.Pipe()
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			fmt.Fprintf(os.Stderr, "[%s] %s\n", name, sc.Text())
		}
	}()
	return pw
}

// port is the port of a host:port address (the whole address if it has none).
func port(addr string) string {
	if _, p, err := net.SplitHostPort(addr); err == nil {
		return p
	}
	return addr
}
