package proc

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"sync"
)

// Child is one run of a child process started by StartCapture.
type Child struct {
	Cmd    *exec.Cmd
	exited chan struct{}
	err    error
}

// StartCapture starts cmd with its stdout and stderr on one pipe, read in the order
// written (a line may go to either, and the log shows them interleaved as a terminal
// would). Each line is appended to out while mu is held, then handed to onLine (nil:
// none) from the reading goroutine. Both this package's binaries and etcdtest's
// members run this way.
func StartCapture(cmd *exec.Cmd, mu *sync.Mutex, out *bytes.Buffer, onLine func(line string)) (*Child, error) {
	r := &Child{Cmd: cmd, exited: make(chan struct{})}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	err = cmd.Start()
	pw.Close()
	if err != nil {
		pr.Close()
		return nil, err
	}
	go func() {
		defer close(r.exited)
		br := bufio.NewReader(pr)
		for {
			line, err := br.ReadString('\n')
			if line != "" {
				mu.Lock()
				out.WriteString(line)
				mu.Unlock()
				if onLine != nil {
					onLine(line)
				}
			}
			if err != nil {
				break
			}
		}
		pr.Close()
		r.err = cmd.Wait()
	}()
	return r, nil
}

// Exited is closed once the process has exited and all its output is read.
func (r *Child) Exited() <-chan struct{} { return r.exited }

// Err is how the process exited (nil: status 0); valid once Exited is closed.
func (r *Child) Err() error { return r.err }
