package main

import (
	"fmt"
	"net"
)

// notifyReady tells systemd that the registrar serves (a unit of Type=notify waits for
// this before it counts as started): it sends READY=1 as one datagram to the unix
// socket $NOTIFY_SOCKET names, as sd_notify(3) does; a name starting with "@" is an
// abstract socket, which Go's net package maps to the leading NUL. Without the
// variable (not started by systemd) it does nothing.
func notifyReady(getenv func(string) string) error {
	addr := getenv("NOTIFY_SOCKET")
	if addr == "" {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("NOTIFY_SOCKET %s: %w", addr, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("READY=1")); err != nil {
		return fmt.Errorf("NOTIFY_SOCKET %s: %w", addr, err)
	}
	return nil
}
