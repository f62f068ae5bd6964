package server

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// Config is the registrar's settings. Each flag may also come from an environment
// variable; a flag given on the command line wins over its variable.
type Config struct {
	Listen    string
	Data      string
	Token     string // resolved from -token, -token-file, REGISTRAR_TOKEN or REGISTRAR_TOKEN_FILE
	AllowCIDR string
	Import    string
}

const usageHead = `registrar: the durable, validated, authenticated service a CMS registers servers with.

Usage: registrar [flags]

Every flag can also be set through the environment variable named after it; a flag
on the command line wins over the variable.

`

const usageTail = `
-import FILE is a one-shot migration: it loads the seed's server_mapping.json
({"name": "ip", ...}) into the data file as one all-or-nothing write (every entry is
validated like a registration, with -allow-cidr applied; serviceName "imported";
entries already registered with the same address are left as they are), prints
what it did and exits (0 on success) without serving. Run it once, then start the
registrar without -import.

Targets refused unless -allow-cidr covers them: loopback (and the DNS name
localhost), link-local (169.254.0.0/16, incl. cloud metadata, and fe80::/10),
unspecified (0.0.0.0/8, ::), multicast and broadcast. With -allow-cidr set, IP
targets outside every range are refused too. Other DNS names are accepted: the
proxy resolves them.
`

// ParseConfig reads args (without the program name) and the environment (getenv).
// It returns flag.ErrHelp after printing usage for -h/-help to out.
func ParseConfig(args []string, getenv func(string) string, out io.Writer) (Config, error) {
	var c Config
	var token, tokenFile string
	fs := flag.NewFlagSet("registrar", flag.ContinueOnError)
	fs.SetOutput(out)
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&c.Listen, "listen", env("REGISTRAR_LISTEN", "127.0.0.1:9000"), "address to listen on, host:port (env REGISTRAR_LISTEN); port 0 picks a free one")
	fs.StringVar(&c.Data, "data", env("REGISTRAR_DATA", "data/servers.json"), "data file, created with its folders on the first write (env REGISTRAR_DATA)")
	fs.StringVar(&token, "token", "", "bearer token every /api/ and /v1/ request must carry (env REGISTRAR_TOKEN); prefer -token-file, since flags show in ps")
	fs.StringVar(&tokenFile, "token-file", "", "file holding the token, surrounding whitespace trimmed (env REGISTRAR_TOKEN_FILE)")
	fs.StringVar(&c.AllowCIDR, "allow-cidr", env("REGISTRAR_ALLOW_CIDR", ""), "comma-separated CIDR ranges IP targets must be in; also the only way to allow loopback, link-local, unspecified or multicast targets (env REGISTRAR_ALLOW_CIDR)")
	fs.StringVar(&c.Import, "import", "", "load a seed server_mapping.json once, then exit (see below)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageHead)
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), usageTail)
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q: all settings are flags (see -help)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	var err error
	switch {
	case set["token"] && set["token-file"]:
		return c, errors.New("give either -token or -token-file, not both")
	case set["token"]:
		c.Token, err = checkToken(token, "-token")
	case set["token-file"]:
		c.Token, err = readTokenFile(tokenFile, "-token-file")
	case getenv("REGISTRAR_TOKEN") != "" && getenv("REGISTRAR_TOKEN_FILE") != "":
		return c, errors.New("set either REGISTRAR_TOKEN or REGISTRAR_TOKEN_FILE, not both")
	case getenv("REGISTRAR_TOKEN") != "":
		c.Token, err = checkToken(getenv("REGISTRAR_TOKEN"), "REGISTRAR_TOKEN")
	case getenv("REGISTRAR_TOKEN_FILE") != "":
		c.Token, err = readTokenFile(getenv("REGISTRAR_TOKEN_FILE"), "REGISTRAR_TOKEN_FILE")
	}
	if err != nil {
		return c, err
	}
	if c.Data == "" {
		return c, errors.New("-data must name a file")
	}
	return c, nil
}

func readTokenFile(path, from string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: cannot read the token file: %v", from, err)
	}
	return checkToken(strings.TrimSpace(string(b)), from+" "+path)
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
