package bin

import "os"

// Bytes returns the bytes of the named output ("filter.wasm", ...), building it first
// when needed, for code that has no testing.TB: Example functions.
func Bytes(name string) ([]byte, error) {
	p, err := path(name)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(p)
}
