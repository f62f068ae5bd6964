package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"switchyard/registrar/store"
)

// readHealthCheck reads the "healthCheck" member of a register or PUT (absent or
// null: the server is not checked): an object with path (required) and interval,
// timeout, healthyThreshold, unhealthyThreshold (each optional, with the defaults of
// package store; the timeout's is the interval when that is shorter). Errors name the
// field (healthCheck.<member>).
func readHealthCheck(raw json.RawMessage) (*store.HealthCheck, error) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || string(t) == "null" {
		return nil, nil
	}
	const eg = `{"path": "/healthz", "interval": "5s", "timeout": "2s", "healthyThreshold": 2, "unhealthyThreshold": 2}`
	if t[0] != '{' {
		return nil, fieldErr("healthCheck", errors.New("must be a JSON object such as "+eg+" (only path is required), or null for no health check"))
	}
	got, raws, err := decodeObject(t, []string{"path", "interval", "timeout"}, []string{"healthyThreshold", "unhealthyThreshold"})
	if err != nil {
		return nil, fieldErr("healthCheck", err)
	}
	path, ok := got["path"]
	if !ok {
		return nil, fieldErr("healthCheck.path", errors.New("missing; the path the registrar sends GET to on each target, such as /healthz"))
	}
	hc := &store.HealthCheck{Path: path, Interval: store.Duration(store.DefaultHealthInterval),
		HealthyThreshold: store.DefaultHealthyThreshold, UnhealthyThreshold: store.DefaultUnhealthyThreshold}
	for _, f := range []struct {
		name string
		to   *store.Duration
	}{{"interval", &hc.Interval}, {"timeout", &hc.Timeout}} {
		if v, ok := got[f.name]; ok {
			d, err := store.ParseDuration(v)
			if err != nil {
				return nil, fieldErr("healthCheck."+f.name, err)
			}
			*f.to = store.Duration(d)
		}
	}
	if _, ok := got["timeout"]; !ok {
		hc.Timeout = store.Duration(min(store.DefaultHealthTimeout, time.Duration(hc.Interval)))
	}
	for _, f := range []struct {
		name string
		to   *int
	}{{"healthyThreshold", &hc.HealthyThreshold}, {"unhealthyThreshold", &hc.UnhealthyThreshold}} {
		if v, ok := raws[f.name]; ok {
			n, err := strconv.Atoi(string(v))
			if err != nil {
				return nil, fieldErr("healthCheck."+f.name, fmt.Errorf("must be a whole number from 1 to %d (got %s)", store.MaxHealthThreshold, truncate(string(v))))
			}
			*f.to = n
		}
	}
	if err := store.CheckHealthCheck(hc); err != nil {
		return nil, err
	}
	return hc, nil
}
