package devproxy

import (
	"context"
	"sync"
	"time"

	"switchyard/wasmhost"
)

// slot holds one VM of a root (the sync VM, or one worker's router VM) and replaces it
// when it dies, as Envoy would recreate a failed worker VM. While a replacement is being
// made, current() is nil and requests for that worker are answered 503 at once.
type slot struct {
	p      *Proxy
	name   string
	plugin wasmhost.PluginConfig

	mu   sync.Mutex
	vm   *wasmhost.VM
	stop chan struct{}
	done chan struct{}
}

func (p *Proxy) newSlot(ctx context.Context, name string, pc wasmhost.PluginConfig) (*slot, error) {
	vm, err := p.module.NewVM(ctx, pc)
	if err != nil {
		return nil, err
	}
	s := &slot{p: p, name: name, plugin: pc, vm: vm, stop: make(chan struct{}), done: make(chan struct{})}
	go s.watch()
	return s, nil
}

// current is the live VM, or nil while it is being replaced.
func (s *slot) current() *wasmhost.VM {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.vm == nil || s.vm.Err() != nil {
		return nil
	}
	return s.vm
}

// watch waits for the VM to die and makes a new one, retrying with a growing pause
// (100 ms up to 5 s) while the module keeps failing to start.
func (s *slot) watch() {
	defer close(s.done)
	for {
		s.mu.Lock()
		vm := s.vm
		s.mu.Unlock()
		select {
		case <-s.stop:
			return
		case <-vm.Dead():
		}
		s.p.log.Error("VM died; replacing it", "vm", s.name, "err", vm.Err())
		s.mu.Lock()
		s.vm = nil
		s.mu.Unlock()
		pause := 100 * time.Millisecond
		for {
			nvm, err := s.p.module.NewVM(context.Background(), s.plugin)
			if err == nil {
				s.mu.Lock()
				s.vm = nvm
				s.mu.Unlock()
				s.p.log.Info("VM replaced", "vm", s.name)
				break
			}
			s.p.log.Error("VM replacement failed", "vm", s.name, "err", err, "retry_in", pause)
			select {
			case <-s.stop:
				return
			case <-time.After(pause):
			}
			pause = min(2*pause, 5*time.Second)
		}
	}
}

func (s *slot) close() {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.vm != nil {
		s.vm.Close()
		s.vm = nil
	}
}
