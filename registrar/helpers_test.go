package main

import "switchyard/internal/testkit/apitest"

// The shared HTTP helpers (apitest) under the names these tests use.
type reply = apitest.Reply

var (
	call     = apitest.Call
	register = apitest.Register
	regBody  = apitest.RegBody
)
