package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"switchyard/internal/registrarapi"
)

// group is a command that only holds subcommands: without one, or with an unknown
// one, it is a usage error.
func group(use, short string) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var names []string
			for _, c := range cmd.Commands() {
				names = append(names, c.Name())
			}
			return usageError("%s: give a subcommand: %s (see switchyardctl %s --help)", use, strings.Join(names, ", "), use)
		},
	}
}

// show prints v as JSON or YAML (-o), or calls table for -o table.
func (g *globals) show(v any, table func(w *tabwriter.Writer)) error {
	switch g.output {
	case "json":
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(g.stdout, "%s\n", b)
		return err
	case "yaml":
		j, err := json.Marshal(v)
		if err != nil {
			return err
		}
		b, err := yaml.JSONToYAML(j)
		if err != nil {
			return err
		}
		_, err = g.stdout.Write(b)
		return err
	}
	w := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	table(w)
	return w.Flush()
}

// targetsText is a server's targets in one column: address/weight and the flags
// that matter (draining, down), comma-separated.
func targetsText(ts []registrarapi.Target) string {
	parts := make([]string, 0, len(ts))
	for _, t := range ts {
		s := t.Address + "/" + strconv.Itoa(t.Weight)
		if t.State != "active" {
			s += " " + t.State
		}
		if t.Health != "up" && t.Health != "" {
			s += " " + t.Health
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

func (g *globals) serversCmd() *cobra.Command {
	cmd := group("servers", "List, show, set and delete server names")
	list := &cobra.Command{
		Use: "list", Short: "Every server, sorted by name", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			res, _, err := g.c.call(http.MethodGet, "/api/servers", nil)
			if err != nil {
				return err
			}
			servers := []registrarapi.Server{}
			if res.Servers != nil {
				servers = *res.Servers
			}
			return g.show(servers, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "NAME\tSERVICE\tADDRESS\tTARGETS\tUPDATED")
				for _, sv := range servers {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", sv.Name, sv.Service, sv.Target, targetsText(sv.Targets), sv.UpdatedAt.Format(time.RFC3339))
				}
			})
		},
	}
	get := &cobra.Command{
		Use: "get NAME", Short: "One server and its targets", Args: cobra.ExactArgs(1),
		ValidArgsFunction: g.completeServers,
		RunE: func(_ *cobra.Command, args []string) error {
			res, _, err := g.c.call(http.MethodGet, serverPath(args[0]), nil)
			if err != nil {
				return err
			}
			return g.showServer(res.Server)
		},
	}
	var weights []int
	var service string
	var allowNoActive bool
	set := &cobra.Command{
		Use:   "set NAME ADDRESS[,ADDRESS...]",
		Short: "Set a server's whole target set (one write)",
		Long: `Set a server's whole target set in one write. --weight gives each address its
weight (one value for all, or one per address; default 1). --service is required for
a new server; an existing one keeps its service name when --service is not given.`,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: g.completeServers,
		RunE: func(_ *cobra.Command, args []string) error {
			name := args[0]
			addrs := strings.Split(args[1], ",")
			if len(weights) > 1 && len(weights) != len(addrs) {
				return usageError("--weight: %d weights for %d addresses; give one weight for all, or one per address in order", len(weights), len(addrs))
			}
			targets := make([]map[string]any, 0, len(addrs))
			for i, a := range addrs {
				a = strings.TrimSpace(a)
				if a == "" {
					return usageError("ADDRESS %q: an empty address; separate addresses with commas, e.g. 10.0.0.1:8080,10.0.0.2:8080", args[1])
				}
				t := map[string]any{"address": a, "weight": 1, "state": "active"}
				switch {
				case len(weights) == 1:
					t["weight"] = weights[0]
				case len(weights) > 1:
					t["weight"] = weights[i]
				}
				targets = append(targets, t)
			}
			// An existing server keeps its service name (unless --service) and its
			// health check: PUT writes the whole server.
			body := map[string]any{"serviceName": service, "targets": targets}
			res, r, err := g.c.call(http.MethodGet, serverPath(name), nil)
			switch {
			case err != nil && r.status == http.StatusNotFound:
				if service == "" {
					return usageError("%s is not registered yet: give its service name with --service", name)
				}
			case err != nil:
				return err
			default:
				if service == "" {
					body["serviceName"] = res.Server.Service
				}
				if res.Server.HealthCheck != nil {
					body["healthCheck"] = res.Server.HealthCheck
				}
			}
			var q url.Values
			if allowNoActive {
				q = url.Values{"allowNoActive": {"true"}}
			}
			return g.write(http.MethodPut, serverPath(name)+g.writeQuery(q), body)
		},
	}
	set.Flags().IntSliceVar(&weights, "weight", nil, "weight of each address, 0-100 (one for all, or one per address)")
	set.Flags().StringVar(&service, "service", "", "service name (required for a new server)")
	set.Flags().BoolVar(&allowNoActive, "allow-no-active", false, "allow a set without an active target of weight above 0 (the proxies then answer 503 no_active_target)")
	del := &cobra.Command{
		Use: "delete NAME", Short: "Delete a server", Args: cobra.ExactArgs(1),
		ValidArgsFunction: g.completeServers,
		RunE: func(_ *cobra.Command, args []string) error {
			return g.write(http.MethodDelete, serverPath(args[0])+g.writeQuery(nil), nil)
		},
	}
	cmd.AddCommand(list, get, set, del)
	return cmd
}

// showServer prints one server: its targets as a table, or the whole server.
func (g *globals) showServer(sv *registrarapi.Server) error {
	if sv == nil {
		return &exitError{exitRefused, "the registrar's answer holds no server"}
	}
	return g.show(sv, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "NAME\t%s\nSERVICE\t%s\nADDRESS\t%s\nUPDATED\t%s\n", sv.Name, sv.Service, sv.Target, sv.UpdatedAt.Format(time.RFC3339))
		if hc := sv.HealthCheck; hc != nil {
			fmt.Fprintf(w, "HEALTH CHECK\tGET %s every %s (timeout %s, up after %d, down after %d)\n", hc.Path, hc.Interval, hc.Timeout, hc.HealthyThreshold, hc.UnhealthyThreshold)
		}
		fmt.Fprintln(w)
		fmt.Fprintln(w, "TARGET\tWEIGHT\tSTATE\tHEALTH")
		for _, t := range sv.Targets {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\n", t.Address, t.Weight, t.State, t.Health)
		}
	})
}

// write sends one write and prints the server as the answer shows it; with
// --wait-applied, a write the proxies had not all applied in time exits 4.
func (g *globals) write(method, path string, body any) error {
	res, _, err := g.c.call(method, path, body)
	if err != nil {
		return err
	}
	if err := g.show(res, func(w *tabwriter.Writer) {
		changed := "changed"
		if res.Changed != nil && !*res.Changed {
			changed = "unchanged"
		}
		name := ""
		if res.Server != nil {
			name = res.Server.Name + " "
		}
		fmt.Fprintf(w, "%s%s at revision %d\n", name, changed, deref(res.Revision))
		if res.Applied != nil {
			fmt.Fprintf(w, "applied by %d proxies\n", deref(res.AppliedBy))
		}
	}); err != nil {
		return err
	}
	if res.Applied != nil && !*res.Applied {
		return &exitError{exitTimeout, fmt.Sprintf("written at revision %d, but not applied by every proxy within %s: %s", deref(res.Revision), g.waitTimeout, pendingText(res.Pending))}
	}
	return nil
}

func deref[T any](p *T) T {
	var z T
	if p == nil {
		return z
	}
	return *p
}

func pendingText(p *[]registrarapi.ProxyView) string {
	if p == nil || len(*p) == 0 {
		return "no proxy named"
	}
	var parts []string
	for _, v := range *p {
		parts = append(parts, fmt.Sprintf("%s at revision %d (%s)", v.Proxy, v.Revision, v.State))
	}
	return "pending: " + strings.Join(parts, ", ")
}

func (g *globals) targetsCmd() *cobra.Command {
	cmd := group("targets", "Change one target of a server, leaving the others as they are")
	var allowNoActive bool
	query := func() string {
		if allowNoActive {
			return g.writeQuery(url.Values{"allowNoActive": {"true"}})
		}
		return g.writeQuery(nil)
	}
	patch := func(use, short string, body func(args []string) (map[string]any, error), nargs int) *cobra.Command {
		return &cobra.Command{
			Use: use, Short: short, Args: cobra.ExactArgs(nargs), ValidArgsFunction: g.completeServers,
			RunE: func(_ *cobra.Command, args []string) error {
				b, err := body(args)
				if err != nil {
					return err
				}
				return g.write(http.MethodPatch, serverPath(args[0], "targets", args[1])+query(), b)
			},
		}
	}
	var addWeight int
	var addDraining bool
	add := &cobra.Command{
		Use: "add NAME ADDRESS", Short: "Add a target (active, weight 1 unless told)", Args: cobra.ExactArgs(2),
		ValidArgsFunction: g.completeServers,
		RunE: func(_ *cobra.Command, args []string) error {
			if addWeight < 0 || addWeight > 100 {
				return usageError("--weight %d: a weight is 0 to 100", addWeight)
			}
			state := "active"
			if addDraining {
				state = "draining"
			}
			return g.write(http.MethodPost, serverPath(args[0], "targets")+query(), map[string]any{"address": args[1], "weight": addWeight, "state": state})
		},
	}
	add.Flags().IntVar(&addWeight, "weight", 1, "the target's weight, 0-100")
	add.Flags().BoolVar(&addDraining, "draining", false, "add it draining (takes no new requests)")
	weight := patch("weight NAME ADDRESS WEIGHT", "Set a target's weight (0-100)", func(args []string) (map[string]any, error) {
		w, err := strconv.Atoi(args[2])
		if err != nil || w < 0 || w > 100 {
			return nil, usageError("WEIGHT %q: a weight is a whole number from 0 to 100", args[2])
		}
		return map[string]any{"weight": w}, nil
	}, 3)
	drain := patch("drain NAME ADDRESS", "Drain a target: no new requests, those in flight finish", func([]string) (map[string]any, error) {
		return map[string]any{"state": "draining"}, nil
	}, 2)
	activate := patch("activate NAME ADDRESS", "Make a target active again", func([]string) (map[string]any, error) {
		return map[string]any{"state": "active"}, nil
	}, 2)
	remove := &cobra.Command{
		Use: "remove NAME ADDRESS", Short: "Remove a target (a server keeps at least one)", Args: cobra.ExactArgs(2),
		ValidArgsFunction: g.completeServers,
		RunE: func(_ *cobra.Command, args []string) error {
			return g.write(http.MethodDelete, serverPath(args[0], "targets", args[1])+query(), nil)
		},
	}
	cmd.PersistentFlags().BoolVar(&allowNoActive, "allow-no-active", false, "allow leaving no active target of weight above 0 (the proxies then answer 503 no_active_target)")
	cmd.AddCommand(add, weight, drain, activate, remove)
	return cmd
}

// switchCmd is the blue/green switch: the active targets become draining and the
// draining ones active, weights kept, in one write of the whole set (PUT), so no
// proxy ever sees both colours active or neither.
func (g *globals) switchCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "switch NAME",
		Short:             "Blue/green: make the draining targets active and the active ones draining, in one write",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: g.completeServers,
		RunE: func(_ *cobra.Command, args []string) error {
			res, _, err := g.c.call(http.MethodGet, serverPath(args[0]), nil)
			if err != nil {
				return err
			}
			sv := res.Server
			var active, draining int
			targets := make([]map[string]any, 0, len(sv.Targets))
			for _, t := range sv.Targets {
				state := "draining"
				if t.State == "draining" {
					state = "active"
					if t.Weight > 0 {
						draining++
					}
				} else {
					active++
				}
				targets = append(targets, map[string]any{"address": t.Address, "weight": t.Weight, "state": state})
			}
			if draining == 0 {
				return &exitError{exitRefused, fmt.Sprintf("%s has no draining target of weight above 0 to switch to (%d active); add the other colour with `switchyardctl targets add %s ADDRESS --draining` first", sv.Name, active, sv.Name)}
			}
			body := map[string]any{"serviceName": sv.Service, "targets": targets}
			if sv.HealthCheck != nil {
				body["healthCheck"] = sv.HealthCheck // PUT writes the whole server: keep its health check
			}
			return g.write(http.MethodPut, serverPath(sv.Name)+g.writeQuery(nil), body)
		},
	}
}

func (g *globals) proxiesCmd() *cobra.Command {
	return &cobra.Command{
		Use: "proxies", Short: "Each proxy and the revision it applied (current, behind or gone)", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			res, r, err := g.c.call(http.MethodGet, "/api/proxies", nil)
			if err != nil {
				return err
			}
			proxies := []registrarapi.ProxyView{}
			if res.Proxies != nil {
				proxies = *res.Proxies
			}
			return g.show(res, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "PROXY\tCLUSTER\tVERSION\tSTATE\tREVISION\tBEHIND\tLAST POLL\tREPLICA")
				for _, p := range proxies {
					behind := "-"
					if p.State != "current" {
						behind = fmt.Sprintf("%d (%.0fs)", p.RevisionsBehind, p.BehindSeconds)
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\t%.0fs ago\t%s\n", p.Proxy, dash(p.Cluster), dash(p.Version), p.State, p.Revision, behind, p.SilentSeconds, p.Replica)
				}
				s := deref(res.Summary)
				fmt.Fprintf(w, "\nrevision %d of lineage %s (replica %s, at %s): %d proxies, %d current, %d behind, %d gone\n",
					deref(res.Revision), res.Lineage, res.Replica, r.from, s.Proxies, s.Current, s.Behind, s.Gone)
			})
		},
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (g *globals) waitCmd() *cobra.Command {
	var revision uint64
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "wait --revision N",
		Short: "Wait until every current proxy has applied revision N (exit 4 at --timeout)",
		Long: `Wait until every proxy that is not gone has applied revision N of the registrar's
current lineage (a proxy of another lineage has not). Exit 0 when they have, 4 when
--timeout passes first (the proxies still behind are listed), 3 when no registrar
answers. With no proxy polling, there is nothing to wait for: exit 0.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("revision") {
				return usageError("wait: give the revision with --revision N (a write prints the revision it made)")
			}
			if timeout <= 0 {
				return usageError("--timeout %s: must be more than 0", timeout)
			}
			deadline := time.Now().Add(timeout)
			for {
				res, _, err := g.c.call(http.MethodGet, "/api/proxies", nil)
				if err != nil {
					return err
				}
				var behind []string
				for _, p := range deref(res.Proxies) {
					if p.State == "gone" {
						continue
					}
					if p.Lineage != res.Lineage || p.Revision < revision {
						behind = append(behind, fmt.Sprintf("%s at revision %d", p.Proxy, p.Revision))
					}
				}
				if deref(res.Revision) < revision {
					behind = append(behind, fmt.Sprintf("the registrar itself is at revision %d", deref(res.Revision)))
				}
				if len(behind) == 0 {
					fmt.Fprintf(g.stdout, "revision %d applied by every proxy (%d)\n", revision, deref(res.Summary).Proxies-deref(res.Summary).Gone)
					return nil
				}
				if time.Now().After(deadline) {
					return &exitError{exitTimeout, fmt.Sprintf("revision %d not applied within %s: %s", revision, timeout, strings.Join(behind, ", "))}
				}
				time.Sleep(min(250*time.Millisecond, time.Until(deadline)+time.Millisecond))
			}
		},
	}
	cmd.Flags().Uint64Var(&revision, "revision", 0, "the revision to wait for")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait")
	return cmd
}

func (g *globals) exportCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "The whole table at one revision, as JSON (the supported backup)",
		Long: `Write the whole table at one revision (GET /api/export) as JSON: the form import
takes back. --map writes the seed's form instead ({"name": "address", ...}: first active
targets only, no service names).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := g.c.do(http.MethodGet, "/api/export", nil)
			if err != nil {
				return err
			}
			if r.status != http.StatusOK {
				return refused(http.MethodGet, "/api/export", r)
			}
			body := r.body
			if asMap, _ := cmd.Flags().GetBool("map"); asMap {
				var e registrarapi.Export
				if err := json.Unmarshal(r.body, &e); err != nil {
					return &exitError{exitRefused, "the export is not JSON: " + err.Error()}
				}
				m := make(map[string]string, len(e.Servers))
				for _, sv := range e.Servers {
					m[sv.Name] = sv.Target
				}
				if body, err = json.MarshalIndent(m, "", "  "); err != nil {
					return err
				}
				body = append(body, '\n')
			}
			if file == "" || file == "-" {
				_, err = g.stdout.Write(body)
				return err
			}
			if err := os.WriteFile(file, body, 0o600); err != nil {
				return &exitError{exitUsage, fmt.Sprintf("--file %s: %v", file, err)}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "write to this file (mode 0600) instead of stdout")
	cmd.Flags().Bool("map", false, "write the seed's map form (name to address) instead")
	return cmd
}

func (g *globals) importCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "import FILE",
		Short: "Make a table the whole table in one write under a new lineage (restore)",
		Long: `Import FILE (- for stdin): an export, or the seed's map {"name": "address", ...}.
It replaces the whole table in one write; every proxy takes it whole. Every entry is
checked like a registration; the first bad one is named and nothing changes.`,
		Args: cobra.ExactArgs(1),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return nil, cobra.ShellCompDirectiveDefault
		},
		RunE: func(_ *cobra.Command, args []string) error {
			var body []byte
			var err error
			if args[0] == "-" {
				body, err = io.ReadAll(g.stdin)
			} else {
				body, err = os.ReadFile(args[0])
			}
			if err != nil {
				return usageError("import %s: %v", args[0], err)
			}
			if !json.Valid(bytes.TrimSpace(body)) {
				return usageError("import %s: not JSON; give an export (switchyardctl export) or a map such as {\"web-1\": \"10.1.2.3:8080\"}", args[0])
			}
			r, err := g.c.do(http.MethodPost, "/api/import", body)
			if err != nil {
				return err
			}
			if r.status != http.StatusOK {
				return refused(http.MethodPost, "/api/import", r)
			}
			var a registrarapi.Answer
			if err := json.Unmarshal(r.body, &a); err != nil {
				return &exitError{exitRefused, "the import's answer is not the API's JSON: " + err.Error()}
			}
			res := a.Result
			return g.show(res, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "imported %d servers at revision %d, new lineage %s\n", deref(res.Imported), deref(res.Revision), res.Lineage)
			})
		},
	}
}

// completeServers completes a server name (the first argument) from the registrar.
func (g *globals) completeServers(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	if g.c == nil {
		if err := g.setup(cmd, nil); err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
	}
	res, _, err := g.c.call(http.MethodGet, "/api/servers", nil)
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var names []string
	for _, sv := range deref(res.Servers) {
		names = append(names, sv.Name)
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}
