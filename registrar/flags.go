package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"switchyard/internal/secretfile"
	"switchyard/registrar/server"
	"switchyard/registrar/store"
	"switchyard/registrar/store/etcdstore"
)

// settings are what the command line and the environment say: the server's Config,
// where the table is kept and how that store is tuned, and the one-shot -import.
// Each flag may also come from an environment variable; a flag given on the command
// line wins over its variable.
type settings struct {
	server server.Config
	// Data is the embedded store's data file; with etcd (UseEtcd, set when
	// -etcd-endpoints is) the table is kept there instead and Data, CompactBytes and
	// Init are not used.
	Data    string
	Etcd    etcdstore.Options
	UseEtcd bool
	// CompactBytes: the log is compacted into the data file once it holds this many
	// bytes, or the data file's size when that is larger.
	CompactBytes int64
	// Init allows starting a new, empty history when data existed at Data and is
	// gone (store.EmbeddedOptions.Init).
	Init   bool
	Import string
}

// defaultCompactBytes is -compact-bytes' default (the server's tuning defaults are
// server.Default*).
const defaultCompactBytes = 8 << 20

const usageHead = `registrar: the durable, validated, authenticated service a CMS registers servers with.

Usage: registrar [flags]

Every flag can also be set through the environment variable named after it; a flag
on the command line wins over the variable.

`

const usageTail = `
With -etcd-endpoints the table is kept in etcd under -etcd-prefix (one key per
server, its value the server as JSON) instead of the -data file: run 2-3 registrars
on the same etcd and prefix and they serve one table, at etcd's revisions. See the
README, "etcd".

-import FILE is a one-shot migration: it loads the Lua router's server_mapping.json
({"name": "ip", ...}) into the data file (or etcd) as one all-or-nothing write (every entry is
validated like a registration, with -allow-cidr applied; serviceName "imported";
entries already registered with the same address are left as they are), prints
what it did and exits (0 on success) without serving. Run it once, then start the
registrar without -import.

Browsers: every write with a body must be Content-Type: application/json, and a
write whose Origin is not the registrar's own (or an -allow-origin one) is refused.
Without a token the registrar answers only for IP addresses, localhost, the -listen
host and -allow-host names (421 otherwise), so a page whose DNS name was re-pointed
here cannot use it; /v1/, /healthz and /metrics answer any name.

Targets refused unless -allow-cidr names their range explicitly (with a range
inside it, e.g. 127.0.0.0/8 or 127.0.0.1/32; 0.0.0.0/0 does not count): loopback
(and the names localhost, *.localhost, localhost.localdomain, ip6-localhost...),
link-local (169.254.0.0/16, fe80::/10), cloud metadata and platform addresses
(169.254.169.254, fd00:ec2::254, 100.100.100.200, 168.63.129.16, ... and names
such as metadata.google.internal; each only by its own address), unspecified
(0.0.0.0/8, ::), multicast and broadcast. IPv6 forms that carry an IPv4 address
(::ffff:a.b.c.d, ::a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16, Teredo) are judged
as that IPv4 address. With -allow-cidr set, IP targets outside every range are
refused too. DNS names are accepted unless -dns-targets=deny or -allow-dns-suffix
says otherwise: the proxy checks the addresses they resolve to when it connects.
`

// parseFlags reads args (without the program name) and the environment (getenv),
// builds the target policy and checks every setting, so that a bad one is refused
// before anything is opened. It returns flag.ErrHelp after printing usage for
// -h/-help to out.
func parseFlags(args []string, getenv func(string) string, out io.Writer) (settings, error) {
	var c settings
	sc := &c.server
	var token, tokenFile, proxyToken, proxyTokenFile, allowCIDR, dnsTargets, allowDNSSuffix string
	fs := flag.NewFlagSet("registrar", flag.ContinueOnError)
	fs.SetOutput(out)
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&sc.Listen, "listen", env("REGISTRAR_LISTEN", "127.0.0.1:9000"), "address to listen on, host:port (env REGISTRAR_LISTEN); port 0 picks a free one")
	fs.StringVar(&c.Data, "data", env("REGISTRAR_DATA", "data/servers.json"), "data file, created with its folders on the first write; its write-ahead log is kept beside it as <data>.wal-<revision> (env REGISTRAR_DATA)")
	fs.StringVar(&token, "token", "", "bearer token every /api/ and /v1/ request must carry (env REGISTRAR_TOKEN); prefer -token-file, since flags show in ps")
	fs.StringVar(&tokenFile, "token-file", "", "file holding the token, surrounding whitespace trimmed; others must not be able to read it (chmod 600) (env REGISTRAR_TOKEN_FILE)")
	fs.StringVar(&proxyToken, "proxy-token", "", "the proxies' own bearer token: when set, /v1/ takes only it (the filter's registrar.token) and /api/ never does (env REGISTRAR_PROXY_TOKEN); prefer -proxy-token-file")
	fs.StringVar(&proxyTokenFile, "proxy-token-file", "", "file holding the proxy token, surrounding whitespace trimmed; others must not be able to read it (chmod 600) (env REGISTRAR_PROXY_TOKEN_FILE)")
	fs.StringVar(&sc.TLSCert, "tls-cert", env("REGISTRAR_TLS_CERT", ""), "PEM certificate chain to serve HTTPS with, with -tls-key; both files are read again when they change (env REGISTRAR_TLS_CERT)")
	fs.StringVar(&sc.TLSKey, "tls-key", env("REGISTRAR_TLS_KEY", ""), "PEM private key of -tls-cert (env REGISTRAR_TLS_KEY)")
	fs.StringVar(&sc.TLSClientCA, "tls-client-ca", env("REGISTRAR_TLS_CLIENT_CA", ""), "PEM CA certificates: /v1/ then requires a client certificate one of them signed (the proxies'); /api/ and the page do not (env REGISTRAR_TLS_CLIENT_CA)")
	fs.StringVar(&allowCIDR, "allow-cidr", env("REGISTRAR_ALLOW_CIDR", ""), "comma-separated CIDR ranges IP targets must be in; also the only way to allow loopback, link-local, metadata, unspecified or multicast targets, by a range inside theirs (env REGISTRAR_ALLOW_CIDR)")
	fs.StringVar(&dnsTargets, "dns-targets", env("REGISTRAR_DNS_TARGETS", "allow"), "allow: targets may be DNS names (the proxy checks what they resolve to); deny: IP addresses only (env REGISTRAR_DNS_TARGETS)")
	fs.StringVar(&allowDNSSuffix, "allow-dns-suffix", env("REGISTRAR_ALLOW_DNS_SUFFIX", ""), "comma-separated DNS suffixes (e.g. .internal.example.com); when set, DNS-name targets must be under one of them (env REGISTRAR_ALLOW_DNS_SUFFIX)")
	fs.StringVar(&sc.AllowHost, "allow-host", env("REGISTRAR_ALLOW_HOST", ""), "comma-separated names the registrar answers for without a token, besides IP addresses, localhost and the -listen host (a guard against DNS rebinding) (env REGISTRAR_ALLOW_HOST)")
	fs.StringVar(&sc.AllowOrigin, "allow-origin", env("REGISTRAR_ALLOW_ORIGIN", ""), "comma-separated origins (https://cms.example.com) whose pages may write besides the registrar's own page (env REGISTRAR_ALLOW_ORIGIN)")
	fs.StringVar(&sc.ReplicaName, "replica-name", env("REGISTRAR_REPLICA_NAME", ""), "this registrar's name in GET /api/proxies, which says which replica saw each proxy; default: the address it listens on (env REGISTRAR_REPLICA_NAME)")
	fs.StringVar(&c.Import, "import", "", "load the Lua router's server_mapping.json once, then exit (see below)")
	etcdFlags := etcdstore.BindFlags(fs, getenv)
	var numErr error
	envInt := func(name string, def int64) int64 {
		v := getenv(name)
		if v == "" {
			return def
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil && numErr == nil {
			numErr = fmt.Errorf("%s: %q is not a whole number", name, v)
		}
		return n
	}
	fs.Int64Var(&c.CompactBytes, "compact-bytes", envInt("REGISTRAR_COMPACT_BYTES", defaultCompactBytes), "compact the write-ahead log into the data file once it holds this many bytes, or the data file's size when larger (env REGISTRAR_COMPACT_BYTES)")
	fs.Int64Var(&sc.History, "history", envInt("REGISTRAR_HISTORY", store.DefaultHistory), "revisions of changes kept for delta answers to proxies (at most that many name changes; ~100 bytes each); a proxy further behind gets the full table (env REGISTRAR_HISTORY)")
	fs.Int64Var(&sc.PageBytes, "page-bytes", envInt("REGISTRAR_PAGE_BYTES", server.DefaultPageBytes), "largest /v1/routes answer in bytes: full tables are sent in pages of this size, well under Envoy's 32 MiB http-call limit (env REGISTRAR_PAGE_BYTES)")
	fs.Int64Var(&sc.MaxServers, "max-servers", envInt("REGISTRAR_MAX_SERVERS", server.DefaultMaxServers), "most servers the table may hold; writes that would add more are refused with 507 (env REGISTRAR_MAX_SERVERS)")
	fs.Int64Var(&sc.MaxProxies, "max-proxies", envInt("REGISTRAR_MAX_PROXIES", server.DefaultMaxProxies), "most proxies GET /api/proxies remembers; a new one beyond that takes the slot of the one silent longest when that one is gone, and is not recorded while all are live (env REGISTRAR_MAX_PROXIES)")
	initDefault := false
	if v := getenv("REGISTRAR_INIT"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil && numErr == nil {
			numErr = fmt.Errorf("REGISTRAR_INIT: %q is not true or false", v)
		}
		initDefault = b
	}
	fs.BoolVar(&c.Init, "init", initDefault, "start a new, empty history when the data file is missing although data existed there (the lock file beside it remembers); without it such a start is refused (env REGISTRAR_INIT=1)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageHead)
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), usageTail)
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if numErr != nil {
		return c, numErr
	}
	if sc.MaxServers < 1 {
		return c, errors.New("-max-servers must be at least 1")
	}
	if sc.MaxProxies < 1 || sc.MaxProxies > 10_000_000 {
		return c, errors.New("-max-proxies must be between 1 and 10000000")
	}
	if c.CompactBytes < 1 {
		return c, errors.New("-compact-bytes must be at least 1")
	}
	if sc.History < 1 || sc.History > 1<<30 {
		return c, errors.New("-history must be between 1 and 1073741824 revisions")
	}
	if sc.PageBytes < server.MinPageBytes || sc.PageBytes > 32<<20 {
		return c, fmt.Errorf("-page-bytes must be between %d and %d (Envoy's http-call answer limit)", server.MinPageBytes, 32<<20)
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q: all settings are flags (see -help)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	var err error
	if sc.Token, err = tokenSetting(set, getenv, "token", token, tokenFile); err != nil {
		return c, err
	}
	if sc.ProxyToken, err = tokenSetting(set, getenv, "proxy-token", proxyToken, proxyTokenFile); err != nil {
		return c, err
	}
	if c.Etcd, c.UseEtcd, err = etcdFlags.Options(); err != nil {
		return c, err
	}
	if c.UseEtcd && set["data"] {
		return c, errors.New("give either -data (the embedded store) or -etcd-endpoints (etcd), not both")
	}
	if c.Data == "" {
		return c, errors.New("-data must name a file")
	}
	if sc.Policy, err = server.PolicyFrom(allowCIDR, dnsTargets, allowDNSSuffix); err != nil {
		return c, err
	}
	if err := sc.Check(); err != nil {
		return c, err
	}
	sc.StoreAt = []any{"data", c.Data}
	if c.UseEtcd {
		sc.StoreAt = []any{"etcd", strings.Join(c.Etcd.Endpoints, ","), "prefix", c.Etcd.Prefix}
	}
	return c, nil
}

// tokenSetting reads the token named name (token, proxy-token) from -name or
// -name-file, else from the variables REGISTRAR_NAME or REGISTRAR_NAME_FILE: "" when
// none is set, an error when both of a pair are.
func tokenSetting(set map[string]bool, getenv func(string) string, name, value, file string) (string, error) {
	envName := "REGISTRAR_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	switch {
	case set[name] && set[name+"-file"]:
		return "", fmt.Errorf("give either -%s or -%s-file, not both", name, name)
	case set[name]:
		return checkToken(value, "-"+name)
	case set[name+"-file"]:
		return readTokenFile(file, "-"+name+"-file")
	case getenv(envName) != "" && getenv(envName+"_FILE") != "":
		return "", fmt.Errorf("set either %s or %s_FILE, not both", envName, envName)
	case getenv(envName) != "":
		return checkToken(getenv(envName), envName)
	case getenv(envName+"_FILE") != "":
		return readTokenFile(getenv(envName+"_FILE"), envName+"_FILE")
	}
	return "", nil
}

func readTokenFile(path, from string) (string, error) {
	t, err := secretfile.Read(path, "the token file")
	if err != nil {
		return "", fmt.Errorf("%s: %v", from, err)
	}
	return checkToken(t, from+" "+path)
}

// checkToken refuses tokens that would silently open the API (empty) or could never
// be sent in a header (spaces, control characters).
func checkToken(t, from string) (string, error) {
	if t == "" {
		return "", fmt.Errorf("%s: the token is empty; put a long random string in it (e.g. openssl rand -hex 32)", from)
	}
	for _, r := range t {
		if r <= ' ' || r == 0x7f {
			return "", fmt.Errorf("%s: the token must not contain spaces or control characters", from)
		}
	}
	return t, nil
}
