// Command switchyardctl is the operator's command line for the Switchyard registrar:
// servers and their targets, the proxies and the revision each applied, waiting for a
// revision, export and import of the whole table. It speaks only the registrar's HTTP
// API (internal/registrarapi/openapi.yaml). See README, "switchyardctl".
package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

// globals are the flags every command takes.
type globals struct {
	registrars  []string
	tokenFile   string
	caFile      string
	output      string
	waitApplied bool
	waitTimeout time.Duration
	verbose     bool

	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	c      *client
}

// run is the whole command: it returns the exit code (see the exit* constants).
func run(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	g := &globals{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	root := newRoot(g)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		fmt.Fprintln(stderr, "switchyardctl: "+ee.msg)
		return ee.code
	}
	// cobra's own errors: an unknown command or flag, a wrong number of arguments.
	fmt.Fprintln(stderr, "switchyardctl: "+err.Error()+"\n(see switchyardctl --help)")
	return exitUsage
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "switchyardctl",
		Short: "Drive a Switchyard registrar: servers, targets, proxies, export and import",
		Long: `switchyardctl drives a Switchyard registrar over its HTTP API.

Exit codes: 0 ok, 1 the registrar refused (its message and HTTP status are shown),
2 usage (nothing was sent), 3 no registrar reachable, 4 timed out waiting for the
proxies to apply a revision.`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		PersistentPreRunE: g.setup,
	}
	f := root.PersistentFlags()
	f.StringSliceVar(&g.registrars, "registrar", nil, "registrar URL; several (comma-separated or repeated) are tried in order, the next on a connection error or 503 (default $SWITCHYARD_REGISTRAR, else http://127.0.0.1:8081)")
	f.StringVar(&g.tokenFile, "token-file", "", "file holding the registrar's token (default: $SWITCHYARD_TOKEN); the token is never printed")
	f.StringVar(&g.caFile, "ca-file", "", "PEM file of the CA(s) to trust for an https:// registrar (its -tls-cert's issuer); default: the system's")
	f.StringVarP(&g.output, "output", "o", "table", "output format: table, json or yaml")
	f.BoolVar(&g.waitApplied, "wait-applied", false, "on writes: answer once every proxy that is not gone has applied the write (exit 4 if not within --wait-timeout)")
	f.DurationVar(&g.waitTimeout, "wait-timeout", 10*time.Second, "how long --wait-applied waits (more than 0, at most 60s)")
	f.BoolVarP(&g.verbose, "verbose", "v", false, "print each request (method, URL, status) to stderr; never headers or the token")
	root.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"table", "json", "yaml"}, cobra.ShellCompDirectiveNoFileComp
	})
	root.AddCommand(g.serversCmd(), g.targetsCmd(), g.switchCmd(), g.proxiesCmd(), g.waitCmd(), g.exportCmd(), g.importCmd())
	return root
}

// setup checks the global flags and builds the client, before any request.
func (g *globals) setup(cmd *cobra.Command, _ []string) error {
	if cmd.Name() == "completion" || cmd.Parent() != nil && cmd.Parent().Name() == "completion" || strings.HasPrefix(cmd.Name(), "__complete") {
		return nil
	}
	switch g.output {
	case "table", "json", "yaml":
	default:
		return usageError("-o %q: the output formats are table, json and yaml", g.output)
	}
	if g.waitTimeout <= 0 || g.waitTimeout > 60*time.Second {
		return usageError("--wait-timeout %s: must be more than 0 and at most 60s", g.waitTimeout)
	}
	regs := g.registrars
	if len(regs) == 0 {
		if env := g.getenv("SWITCHYARD_REGISTRAR"); env != "" {
			regs = strings.Split(env, ",")
		} else {
			regs = []string{"http://127.0.0.1:8081"}
		}
	}
	var list []string
	for _, r := range regs {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		u, err := url.Parse(r)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" {
			return usageError("--registrar %q: give the registrar's URL, such as http://127.0.0.1:8081 (scheme and host, no user or query)", r)
		}
		list = append(list, strings.TrimSuffix(r, "/"))
	}
	if len(list) == 0 {
		return usageError("--registrar: give at least one registrar URL, such as http://127.0.0.1:8081")
	}
	token, err := g.token()
	if err != nil {
		return err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if g.caFile != "" {
		pem, err := os.ReadFile(g.caFile)
		if err != nil {
			return usageError("--ca-file %s: %v", g.caFile, errors.Unwrap(err))
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return usageError("--ca-file %s: no PEM certificate in it; give the CA certificate that issued the registrar's -tls-cert", g.caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	g.c = &client{registrars: list, token: token, http: &http.Client{Timeout: timeoutFor(g.waitTimeout), Transport: tr}}
	if g.verbose {
		g.c.verbose = g.stderr
	}
	return nil
}

// token reads --token-file, else SWITCHYARD_TOKEN; errors never hold the token.
func (g *globals) token() (string, error) {
	if g.tokenFile == "" {
		return strings.TrimSpace(g.getenv("SWITCHYARD_TOKEN")), nil
	}
	b, err := os.ReadFile(g.tokenFile)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", usageError("--token-file %s: %v; give a file that holds the registrar's token", g.tokenFile, err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", usageError("--token-file %s: the file is empty; it must hold the registrar's token", g.tokenFile)
	}
	if strings.ContainsAny(t, "\r\n") {
		return "", usageError("--token-file %s: the file holds more than one line; it must hold only the registrar's token", g.tokenFile)
	}
	return t, nil
}

// writeQuery is the query of a write: wait=applied with --wait-applied, and extra
// (e.g. allowNoActive=true).
func (g *globals) writeQuery(extra url.Values) string {
	q := url.Values{}
	for k, v := range extra {
		q[k] = v
	}
	if g.waitApplied {
		q.Set("wait", "applied")
		q.Set("timeout", g.waitTimeout.String())
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}
