// A minimal wasip1 c-shared module for package bin's own test of Guest: it exports one
// function so the build has something to keep.
package main

//go:wasmexport answer
func answer() int32 { return 42 }

func main() {}
