// Package secretfile reads a secret (a token, a password) from a file, refusing a
// file that anyone but its owner and group may read or that its group may write, as
// ssh refuses such a private key: a secret others can read is no longer one. Group
// read is allowed because Kubernetes makes a Secret's files group-readable for the
// pod's fsGroup (0440 with defaultMode 0400).
package secretfile

import (
	"fmt"
	"os"
	"strings"
)

// Read returns the content of the file at path with surrounding whitespace trimmed.
// what names the file in errors ("the token file").
func Read(path, what string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("cannot read %s: %v", what, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("cannot read %s: %v", what, err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%s %s is not a regular file", what, path)
	}
	if perm := st.Mode().Perm(); perm&0o027 != 0 {
		return "", fmt.Errorf("%s %s may be read or changed by others (permissions %04o); run chmod 600 %s (or 400; the owner should be the user the registrar runs as)", what, path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("cannot read %s: %v", what, err)
	}
	return strings.TrimSpace(string(b)), nil
}
