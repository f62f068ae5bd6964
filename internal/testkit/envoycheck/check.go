package envoycheck

import (
	"errors"

	"switchyard/internal/envoyconfig"
)

// Check loads the file at path and returns every problem ValidateDeep and
// CheckSemantics find. The error is for a file that cannot be loaded at all.
func Check(path string) ([]Problem, error) {
	bs, err := envoyconfig.Load(path)
	if err != nil {
		return nil, err
	}
	return append(ValidateDeep(bs), CheckSemantics(bs)...), nil
}

// Join turns problems into one error (nil when there are none), one problem a line.
func Join(ps []Problem) error {
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p
	}
	return errors.Join(errs...)
}
