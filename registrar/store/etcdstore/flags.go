package etcdstore

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"switchyard/internal/secretfile"
)

// Flags are the registrar's -etcd-* settings, each with an environment twin
// (REGISTRAR_ETCD_*); a flag on the command line wins over its variable.
type Flags struct {
	fs                                   *flag.FlagSet
	getenv                               func(string) string
	endpoints, prefix, cacert, cert, key string
	username, password, passwordFile     string
	dialTimeout, electionTTL             time.Duration
}

// BindFlags defines the -etcd-* flags on fs, their defaults taken from getenv.
func BindFlags(fs *flag.FlagSet, getenv func(string) string) *Flags {
	f := &Flags{fs: fs, getenv: getenv}
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&f.endpoints, "etcd-endpoints", env("REGISTRAR_ETCD_ENDPOINTS", ""), "comma-separated etcd client URLs (http://host:2379,...); when set, the table is kept in etcd instead of -data, and several registrars on the same etcd and prefix serve one table (env REGISTRAR_ETCD_ENDPOINTS)")
	fs.StringVar(&f.prefix, "etcd-prefix", env("REGISTRAR_ETCD_PREFIX", DefaultPrefix), "etcd key prefix of the table: one key per server, plus @lineage and @last-write (env REGISTRAR_ETCD_PREFIX)")
	fs.StringVar(&f.cacert, "etcd-cacert", env("REGISTRAR_ETCD_CACERT", ""), "PEM file of the CA that signed etcd's server certificates, for https:// endpoints (env REGISTRAR_ETCD_CACERT)")
	fs.StringVar(&f.cert, "etcd-cert", env("REGISTRAR_ETCD_CERT", ""), "client certificate (PEM) for etcd's --client-cert-auth; with -etcd-key (env REGISTRAR_ETCD_CERT)")
	fs.StringVar(&f.key, "etcd-key", env("REGISTRAR_ETCD_KEY", ""), "client certificate's key (PEM); with -etcd-cert (env REGISTRAR_ETCD_KEY)")
	fs.StringVar(&f.username, "etcd-username", env("REGISTRAR_ETCD_USERNAME", ""), "etcd user, when etcd has auth enabled (env REGISTRAR_ETCD_USERNAME)")
	fs.StringVar(&f.password, "etcd-password", "", "etcd user's password (env REGISTRAR_ETCD_PASSWORD); prefer -etcd-password-file, since flags show in ps")
	fs.StringVar(&f.passwordFile, "etcd-password-file", "", "file holding the etcd password, surrounding whitespace trimmed; others must not be able to read it (chmod 600) (env REGISTRAR_ETCD_PASSWORD_FILE)")
	def := 5 * time.Second
	if v := getenv("REGISTRAR_ETCD_DIAL_TIMEOUT"); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			def = d
		}
	}
	fs.DurationVar(&f.dialTimeout, "etcd-dial-timeout", def, "how long to wait for etcd when connecting, and for each request (a write not confirmed in time answers 503) (env REGISTRAR_ETCD_DIAL_TIMEOUT)")
	ttl := DefaultElectionTTL
	if v := getenv("REGISTRAR_ETCD_ELECTION_TTL"); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			ttl = d
		}
	}
	fs.DurationVar(&f.electionTTL, "etcd-election-ttl", ttl, "lease of this replica's candidacy in the election of the one replica that runs the active health checks: when it dies, another takes over within this time; whole seconds from 2s to 60s (env REGISTRAR_ETCD_ELECTION_TTL)")
	return f
}

// Options returns the settings after fs was parsed; ok is false when no endpoints
// are set (the embedded store is used).
func (f *Flags) Options() (o Options, ok bool, err error) {
	for _, name := range []string{"REGISTRAR_ETCD_DIAL_TIMEOUT", "REGISTRAR_ETCD_ELECTION_TTL"} {
		if v := f.getenv(name); v != "" {
			if _, err := time.ParseDuration(v); err != nil {
				return o, false, fmt.Errorf("%s: %q is not a duration (e.g. 5s)", name, v)
			}
		}
	}
	set := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	for _, ep := range strings.Split(f.endpoints, ",") {
		if ep = strings.TrimSpace(ep); ep != "" {
			if !strings.HasPrefix(ep, "http://") && !strings.HasPrefix(ep, "https://") {
				return o, false, fmt.Errorf("-etcd-endpoints: %q must be a URL, http://host:port or https://host:port", ep)
			}
			o.Endpoints = append(o.Endpoints, ep)
		}
	}
	if len(o.Endpoints) == 0 {
		for _, name := range []string{"etcd-prefix", "etcd-cacert", "etcd-cert", "etcd-key", "etcd-username", "etcd-password", "etcd-password-file", "etcd-dial-timeout", "etcd-election-ttl"} {
			if set[name] {
				return o, false, fmt.Errorf("-%s is set but -etcd-endpoints is not; set the endpoints to use etcd, or drop -%s", name, name)
			}
		}
		return o, false, nil
	}
	o.Prefix = f.prefix
	if o.Prefix == "" || !strings.HasSuffix(o.Prefix, "/") {
		return o, false, fmt.Errorf("-etcd-prefix: %q must end with / (e.g. %s), so one table's keys never share a prefix with another's", o.Prefix, DefaultPrefix)
	}
	if f.dialTimeout <= 0 {
		return o, false, errors.New("-etcd-dial-timeout must be positive (e.g. 5s)")
	}
	o.DialTimeout = f.dialTimeout
	if t := f.electionTTL; t < 2*time.Second || t > time.Minute || t%time.Second != 0 {
		return o, false, fmt.Errorf("-etcd-election-ttl: %v is not whole seconds from 2s to 60s (etcd leases count whole seconds and grant at least about 2)", t)
	}
	o.ElectionTTL = f.electionTTL
	o.CACert, o.Cert, o.Key = f.cacert, f.cert, f.key
	if (o.Cert == "") != (o.Key == "") {
		return o, false, errors.New("give both -etcd-cert and -etcd-key, or neither")
	}
	o.Username = f.username
	pw, pwFile := f.password, f.passwordFile
	from := "-etcd-password"
	switch {
	case set["etcd-password"] && set["etcd-password-file"]:
		return o, false, errors.New("give either -etcd-password or -etcd-password-file, not both")
	case set["etcd-password"], set["etcd-password-file"]:
	case f.getenv("REGISTRAR_ETCD_PASSWORD") != "" && f.getenv("REGISTRAR_ETCD_PASSWORD_FILE") != "":
		return o, false, errors.New("set either REGISTRAR_ETCD_PASSWORD or REGISTRAR_ETCD_PASSWORD_FILE, not both")
	default:
		pw, pwFile = f.getenv("REGISTRAR_ETCD_PASSWORD"), f.getenv("REGISTRAR_ETCD_PASSWORD_FILE")
		from = "REGISTRAR_ETCD_PASSWORD"
	}
	if pwFile != "" {
		var err error
		if pw, err = secretfile.Read(pwFile, "the etcd password file"); err != nil {
			return o, false, err
		}
		if pw == "" {
			return o, false, fmt.Errorf("etcd password file %s is empty", pwFile)
		}
	}
	if pw != "" && o.Username == "" {
		return o, false, fmt.Errorf("%s is set but -etcd-username is not; etcd auth needs both", from)
	}
	o.Password = pw
	return o, true, nil
}
