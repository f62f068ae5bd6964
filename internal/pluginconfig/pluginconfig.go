// Package pluginconfig is the filter's plugin configuration (README, "Filter
// configuration"): the one parser that the filter's on_configure, the dev proxy and the
// envoy.yaml check all use, so that what one accepts the others accept too. It is pure
// Go on gjson, builds for wasip1 and arms no timer.
package pluginconfig

import (
	"errors"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"switchyard/internal/validate"
)

// Config is the plugin configuration (README, "Filter configuration"; the JSON Schema in deploy/plugin-config.schema.json). Both
// roots parse the same JSON; the router uses the routing keys, the sync the registrar.
type Config struct {
	// Header names the request header that carries the server name. Lower-cased,
	// because proxy-wasm hosts look headers up by their lower-case name.
	Header string
	// PathPrefixes are matched segment-wise (see MatchesPrefix); other paths pass.
	PathPrefixes []string
	// DefaultPort is added to a target that was registered without a port.
	DefaultPort int
	// StripHeader removes Header from a routed request before it goes upstream.
	StripHeader bool
	// ProxyID is the identity the sync sends in its polls (proxy=); "" (the default)
	// means Envoy's node.id, read from the host's properties.
	ProxyID string
	// StaleAfterSeconds is the table age (seconds since the last successful poll) past
	// which routers log that the table is stale; 0 (the default) means
	// DefaultStaleAfter: 3 × (registrar.wait_seconds + 10).
	StaleAfterSeconds int
	// MaxFails and FailTimeout (seconds) are the passive health check's, with nginx's
	// names and meaning: MaxFails failures of a target within FailTimeout skip it for
	// FailTimeout. MaxFails 0 turns the check off.
	MaxFails    int
	FailTimeout int
	Registrar   RegistrarConfig
}

// Bounds of max_fails and fail_timeout.
const (
	MaxMaxFails    = 1000
	MaxFailTimeout = 3600 // seconds
)

// MaxStaleAfterSeconds bounds stale_after_seconds (a day).
const MaxStaleAfterSeconds = 86400

// StaleAfter is the table age in seconds past which routers report a stale table:
// StaleAfterSeconds, or when 0 three poll timeouts (a poll is answered at the latest
// wait_seconds + 10 s after it is sent, so three missed answers in a row).
func (c Config) StaleAfter() int {
	if c.StaleAfterSeconds > 0 {
		return c.StaleAfterSeconds
	}
	return 3 * (c.Registrar.WaitSeconds + 10)
}

// MaxProxyIDLength bounds proxy_id.
const MaxProxyIDLength = 200

// RegistrarConfig says where the sync root long-polls the route table.
type RegistrarConfig struct {
	Cluster     string // the proxy's cluster name for the registrar
	Authority   string // :authority of the poll request
	Path        string // e.g. /v1/routes; ?after=R&wait=W is appended
	WaitSeconds int    // long-poll wait the registrar is asked for
	Token       string // sent as "authorization: Bearer <token>" when not empty
	// TokenEnv ("": none) names an environment variable of the VM holding the token instead (the
	// hosts put secrets there: Envoy's vm_config.environment_variables, Istio's
	// vmConfig.env, Envoy Gateway's env.hostKeys); the sync reads it when it starts.
	TokenEnv string
}

// MaxWaitSeconds bounds registrar.wait_seconds: the poll timeout is wait+10 s and a
// proxy keeps no request open for more than a few minutes.
const MaxWaitSeconds = 600

// Default is what an empty configuration means.
func Default() Config {
	return Config{
		Header:       "x-server-name",
		PathPrefixes: []string{"/sys"},
		DefaultPort:  80,
		MaxFails:     1,
		FailTimeout:  10,
		Registrar: RegistrarConfig{
			Cluster:     "registrar",
			Authority:   "registrar",
			Path:        "/v1/routes",
			WaitSeconds: 30,
		},
	}
}

// Parse reads the plugin configuration. Missing keys take their defaults; an
// empty configuration (Envoy passes none when `configuration` is unset) is all
// defaults. Invalid JSON, a key that is not in the contract, a value of the wrong type
// or a bad value is an error whose text names the key, so on_configure can refuse the
// plugin with a log line an operator can act on.
func Parse(data []byte) (Config, error) {
	c := Default()
	if len(strings.TrimSpace(string(data))) == 0 {
		return c, nil
	}
	if !gjson.ValidBytes(data) {
		return c, errors.New("configuration is not valid JSON")
	}
	root := gjson.ParseBytes(data)
	if !root.IsObject() {
		return c, errors.New("configuration must be a JSON object, e.g. {\"header\": \"x-server-name\"}")
	}
	err := eachKey(root, "", func(key string, v gjson.Result) error {
		switch key {
		case "header":
			s, err := stringValue(key, v)
			if err != nil {
				return err
			}
			if !isHeaderName(s) {
				return errors.New("key \"header\": '" + s + "' is not an HTTP header name (letters, digits and !#$%&'*+-.^_`|~ only)")
			}
			c.Header = strings.ToLower(s)
		case "path_prefixes":
			ps, err := prefixes(key, v)
			if err != nil {
				return err
			}
			c.PathPrefixes = ps
		case "default_port":
			n, err := intValue(key, v)
			if err != nil {
				return err
			}
			if n < 1 || n > 65535 {
				return errors.New("key \"default_port\": " + strconv.FormatInt(n, 10) + " is not a port; use 1 to 65535")
			}
			c.DefaultPort = int(n)
		case "strip_header":
			if !v.IsBool() {
				return wrongType(key, "true or false", v)
			}
			c.StripHeader = v.Bool()
		case "proxy_id":
			s, err := stringValue(key, v)
			if err != nil {
				return err
			}
			if s != "" && !isProxyID(s) {
				return errors.New("key \"proxy_id\": " + strconv.Quote(s) + " must be at most " + strconv.Itoa(MaxProxyIDLength) +
					" characters of visible ASCII without spaces, e.g. \"edge-eu-1\" (empty or left out: Envoy's node.id is sent)")
			}
			c.ProxyID = s
		case "stale_after_seconds":
			n, err := intValue(key, v)
			if err != nil {
				return err
			}
			if n < 0 || n > MaxStaleAfterSeconds {
				return errors.New("key \"stale_after_seconds\": " + strconv.FormatInt(n, 10) + " is out of range; use 1 to " +
					strconv.Itoa(MaxStaleAfterSeconds) + " (more than registrar.wait_seconds + 10, or a table that is only waiting for a change counts as stale), or 0 for 3 × (registrar.wait_seconds + 10)")
			}
			c.StaleAfterSeconds = int(n)
		case "max_fails":
			n, err := intValue(key, v)
			if err != nil {
				return err
			}
			if n < 0 || n > MaxMaxFails {
				return errors.New("key \"max_fails\": " + strconv.FormatInt(n, 10) + " is out of range; use 1 to " +
					strconv.Itoa(MaxMaxFails) + " (failures within fail_timeout that skip a target), or 0 to turn the passive health check off")
			}
			c.MaxFails = int(n)
		case "fail_timeout":
			n, err := intValue(key, v)
			if err != nil {
				return errors.New("key \"fail_timeout\" must be a whole number of seconds, e.g. 10 (nginx's 10s), got " + v.Raw)
			}
			if n < 1 || n > MaxFailTimeout {
				return errors.New("key \"fail_timeout\": " + strconv.FormatInt(n, 10) + " is out of range; use 1 to " +
					strconv.Itoa(MaxFailTimeout) + " seconds")
			}
			c.FailTimeout = int(n)
		case "registrar":
			return parseRegistrar(v, &c.Registrar)
		default:
			return unknownKey(key, "header, path_prefixes, default_port, strip_header, proxy_id, stale_after_seconds, max_fails, fail_timeout, registrar")
		}
		return nil
	})
	return c, err
}

func parseRegistrar(v gjson.Result, r *RegistrarConfig) error {
	if !v.IsObject() {
		return wrongType("registrar", "an object", v)
	}
	err := eachKey(v, "registrar.", func(key string, v gjson.Result) error {
		switch key {
		case "registrar.token_env":
			s, err := stringValue(key, v)
			if err != nil {
				return err
			}
			if s != "" && !isEnvName(s) {
				return errors.New("key \"registrar.token_env\": " + strconv.Quote(s) + " is not an environment variable name (letters, digits and _, not starting with a digit), e.g. SWITCHYARD_REGISTRAR_TOKEN")
			}
			r.TokenEnv = s
		case "registrar.cluster", "registrar.authority", "registrar.path", "registrar.token":
			s, err := stringValue(key, v)
			if err != nil {
				return err
			}
			if strings.ContainsFunc(s, isControl) {
				return errors.New("key \"" + key + "\" must not contain line breaks, tabs, NUL or other control characters")
			}
			switch key {
			case "registrar.cluster":
				if s == "" {
					return errors.New("key \"registrar.cluster\" must name the proxy's cluster for the registrar")
				}
				r.Cluster = s
			case "registrar.authority":
				if s == "" {
					return errors.New("key \"registrar.authority\" must not be empty (it is the :authority of the poll)")
				}
				r.Authority = s
			case "registrar.path":
				if !strings.HasPrefix(s, "/") || !isPathText(s) {
					return errors.New("key \"registrar.path\": " + strconv.Quote(s) + " must start with '/' and hold only visible ASCII other than '?' and '#' (percent-encode the rest), e.g. /v1/routes")
				}
				r.Path = s
			default:
				r.Token = s
			}
		case "registrar.wait_seconds":
			n, err := intValue(key, v)
			if err != nil {
				return err
			}
			if n < 1 || n > MaxWaitSeconds {
				return errors.New("key \"registrar.wait_seconds\": " + strconv.FormatInt(n, 10) + " is out of range; use 1 to " + strconv.Itoa(MaxWaitSeconds))
			}
			r.WaitSeconds = int(n)
		default:
			return unknownKey(key, "registrar.cluster, registrar.authority, registrar.path, registrar.wait_seconds, registrar.token, registrar.token_env")
		}
		return nil
	})
	if err == nil && r.Token != "" && r.TokenEnv != "" {
		err = errors.New("keys \"registrar.token\" and \"registrar.token_env\" both give the token; keep one")
	}
	return err
}

// isEnvName: a POSIX environment variable name.
func isEnvName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return s != ""
}

// eachKey calls f for each key of obj (named with prefix) and refuses duplicates,
// which JSON allows but which would leave it unclear which value is meant.
func eachKey(obj gjson.Result, prefix string, f func(key string, v gjson.Result) error) error {
	var err error
	seen := map[string]bool{}
	obj.ForEach(func(k, v gjson.Result) bool {
		key := prefix + k.Str
		if seen[key] {
			err = errors.New("key \"" + key + "\" appears twice; give it once")
			return false
		}
		seen[key] = true
		err = f(key, v)
		return err == nil
	})
	return err
}

func prefixes(key string, v gjson.Result) ([]string, error) {
	if !v.IsArray() {
		return nil, wrongType(key, "an array of strings", v)
	}
	var out []string
	var err error
	v.ForEach(func(_, p gjson.Result) bool {
		if p.Type != gjson.String {
			err = wrongType(key, "an array of strings", p)
			return false
		}
		s := p.Str
		switch {
		case s == "/":
		case !strings.HasPrefix(s, "/") || strings.HasSuffix(s, "/") || !isPathText(s):
			err = errors.New("key \"path_prefixes\": " + strconv.Quote(s) + " must start with '/', not end with '/' and hold only visible ASCII other than '?' and '#' (percent-encode the rest), e.g. /sys")
			return false
		}
		out = append(out, s)
		return true
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("key \"path_prefixes\" must list at least one prefix, e.g. [\"/sys\"]")
	}
	return out, nil
}

func stringValue(key string, v gjson.Result) (string, error) {
	if v.Type != gjson.String {
		return "", wrongType(key, "a string", v)
	}
	return v.Str, nil
}

// intValue accepts only a JSON integer: 80, not 80.5, "80" or 8e1.
func intValue(key string, v gjson.Result) (int64, error) {
	if v.Type != gjson.Number {
		return 0, wrongType(key, "an integer", v)
	}
	n, err := strconv.ParseInt(v.Raw, 10, 64)
	if err != nil {
		return 0, wrongType(key, "an integer", v)
	}
	return n, nil
}

func wrongType(key, want string, v gjson.Result) error {
	got := v.Raw
	if len(got) > 40 {
		got = got[:40] + "..."
	}
	return errors.New("key \"" + key + "\" must be " + want + ", got " + got)
}

func unknownKey(key, known string) error {
	return errors.New("unknown key \"" + key + "\"; the known keys are " + known)
}

// isHeaderName reports whether s is an RFC 9110 token, the syntax of a header name.
func isHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// isPathText reports whether s holds only what a request path may carry as is:
// visible ASCII, and neither '?' nor '#', which end the path. Anything else can
// never match a path the proxy hands the filter, or would break the poll's :path.
func isPathText(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '?' || c == '#' {
			return false
		}
	}
	return true
}

// isProxyID reports whether s is 1 to MaxProxyIDLength bytes of visible ASCII: it
// goes into the poll's query (percent-encoded) and onto the registrar's page.
func isProxyID(s string) bool {
	return len(s) > 0 && len(s) <= MaxProxyIDLength && validate.VisibleASCII(s)
}

// isControl reports the characters no header value may carry: C0 controls and DEL.
func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// MatchesPrefix reports whether path is under one of prefixes, segment-wise: "/sys"
// covers "/sys", "/sys/..." and "/sys?...", but not "/system". The prefix "/" covers
// every path.
func MatchesPrefix(path string, prefixes []string) bool {
	for _, p := range prefixes {
		if p == "/" {
			return true
		}
		if !strings.HasPrefix(path, p) {
			continue
		}
		if len(path) == len(p) || path[len(p)] == '/' || path[len(p)] == '?' {
			return true
		}
	}
	return false
}
