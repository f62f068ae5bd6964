package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"switchyard/internal/testkit/apitest"
	"switchyard/internal/testkit/etcdtest"
	"switchyard/internal/testkit/proc"
)

// Two registrar replicas on one etcd cluster (3 members): exactly one runs the active
// health checks (the target counts the checks per replica, named in the User-Agent);
// when that replica is killed (SIGKILL: its election lease is not given back), the
// other takes over within the election TTL, the table's revision unmoved by the
// election, and its checks write the target down. The killed one, started again,
// waits its turn; when the checking one stops cleanly (SIGTERM), it gives its
// leadership back and the other takes over at once, well within the TTL.
func TestBinaryEtcdOneReplicaChecks(t *testing.T) {
	c := etcdtest.Start(t, 3)
	const ttl = 4 * time.Second
	start := func(name string) *proc.Proc {
		return startBinary(t, []string{"REGISTRAR_ETCD_ENDPOINTS=" + c.EndpointList(), "REGISTRAR_ETCD_PREFIX=/health-test/",
			"REGISTRAR_ALLOW_CIDR=127.0.0.0/8"}, "-replica-name", name, "-etcd-election-ttl", ttl.String())
	}
	reps := map[string]*proc.Proc{"r1": start("r1"), "r2": start("r2")}
	target := apitest.NewHealthTarget(t, "127.0.0.1")
	body := fmt.Sprintf(`{"host": "web", "serviceName": "shop", "targets": [{"address": %q}],
		"healthCheck": {"path": "/healthz", "interval": "200ms", "timeout": "200ms", "unhealthyThreshold": 2, "healthyThreshold": 1}}`, target.Addr)
	if r := call(t, "POST", reps["r1"].URL()+"/api/servers/register", body); r.Code != 200 {
		t.Fatalf("register: %d %s", r.Code, r.Body)
	}
	agent := func(name string) string { return "switchyard-registrar (health check; replica " + name + ")" }

	deadline := time.Now().Add(10 * time.Second)
	for target.Hits() < 5 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second) // both would have checked by now if both did
	hits := target.ByAgent()
	if len(hits) != 1 || hits[agent("r1")]+hits[agent("r2")] < 5 {
		t.Fatalf("checks per replica %v, want at least 5 from exactly one of r1, r2", hits)
	}
	checking, other := "r1", "r2"
	if hits[agent("r2")] > 0 {
		checking, other = "r2", "r1"
	}
	revision := func(p *proc.Proc) uint64 {
		var a struct {
			Revision uint64 `json:"revision"`
		}
		json.Unmarshal(call(t, "GET", p.URL()+"/healthz", "").Body, &a)
		return a.Revision
	}
	rev := revision(reps[other])

	if err := reps[checking].Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	deadline = killed.Add(ttl + 5*time.Second)
	for target.ByAgent()[agent(other)] == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%v after killing %s, %s has not checked (checks %v)\n%s", time.Since(killed), checking, other, target.ByAgent(), reps[other].Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(killed)
	t.Logf("%s took over the checks %v after %s was killed (election TTL %v)", other, took.Round(10*time.Millisecond), checking, ttl)
	if took > ttl+2*time.Second {
		t.Errorf("take-over took %v, want about the TTL %v", took, ttl)
	}
	if got := revision(reps[other]); got != rev {
		t.Errorf("revision %d after the election changed hands, want %d (election keys are not the table)", got, rev)
	}
	if m := string(call(t, "GET", reps[other].URL()+"/metrics", "").Body); !strings.Contains(m, "\nregistrar_etcd_invalid_keys 0\n") || !strings.Contains(m, "\nregistrar_health_checking 1\n") {
		t.Errorf("%s's metrics: want registrar_etcd_invalid_keys 0 (election keys are not servers) and registrar_health_checking 1", other)
	}
	if out := reps[other].Output(); !strings.Contains(out, "health checks: this registrar runs them") {
		t.Errorf("%s does not log that it runs the checks:\n%s", other, out)
	}

	target.Status.Store(500)
	deadline = time.Now().Add(5 * time.Second)
	for {
		r := call(t, "GET", reps[other].URL()+"/api/servers/web", "")
		if strings.Contains(string(r.Body), `"health":"down"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the target is not shown down by %s: %s", other, r.Body)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The killed replica comes back and waits; the checking one stops cleanly.
	before := target.ByAgent()[agent(checking)]
	reps[checking].Restart()
	time.Sleep(time.Second)
	if n := target.ByAgent()[agent(checking)] - before; n != 0 {
		t.Fatalf("%s, started again while %s checks, made %d checks", checking, other, n)
	}
	stop(t, reps[other])
	stopped := time.Now()
	deadline = stopped.Add(ttl + 5*time.Second)
	for target.ByAgent()[agent(checking)] == before {
		if time.Now().After(deadline) {
			t.Fatalf("%v after %s stopped, %s has not checked\n%s", time.Since(stopped), other, checking, reps[checking].Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	took = time.Since(stopped)
	t.Logf("%s took over the checks %v after %s stopped cleanly", checking, took.Round(10*time.Millisecond), other)
	if took >= ttl/2 {
		t.Errorf("take-over after a clean stop took %v, want well under the TTL %v (the leader resigns)", took, ttl)
	}
}
