package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/pushd/pushd/internal/pushsim"
	"github.com/pushd/pushd/internal/pushsim/pushsimtest"
	"github.com/pushd/pushd/internal/storage/storagetest"
	"github.com/pushd/pushd/pushjob"
)

// runAsPushd, set to 1 in a child's environment, makes the test binary
// run pushd with the child's arguments instead of the tests: a pushd in a
// process of its own, which a test can SIGKILL as an operator's machine
// would.
const runAsPushd = "PUSHD_TEST_RUN_AS_PUSHD"

// tokenRedisDB is TestProviderTokenSharedAcrossRestart's Redis database:
// its processes must meet nobody else's jobs, workers or tokens, and the
// other tests here share e2eRedisDB.
const tokenRedisDB = 10

func TestMain(m *testing.M) {
	if os.Getenv(runAsPushd) == "1" {
		main() // exits
	}
	os.Exit(m.Run())
}

// pushdProcess is `pushd serve` in a child process.
type pushdProcess struct {
	t    *testing.T
	cmd  *exec.Cmd
	base string
	done chan struct{} // closed once it has exited

	mu     sync.Mutex
	stderr bytes.Buffer
}

// startPushdProcess runs `pushd serve --config config` in a child process
// listening on an address of its own, stops it when the test ends, and
// waits for /readyz.
func startPushdProcess(t *testing.T, config string) *pushdProcess {
	t.Helper()
	listen := freeAddr(t)
	p := &pushdProcess{t: t, base: "http://" + listen, done: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], "serve", "--config", config)
	p.cmd.Env = append(os.Environ(), runAsPushd+"=1", "PUSHD_LISTEN="+listen)
	p.cmd.Stderr = &lockedWriter{&p.mu, &p.stderr}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start pushd: %v", err)
	}
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("pushd at %s:\n%s", p.base, p.output())
		}
	})
	hc := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := hc.Get(p.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("pushd exited before it was ready (%v):\n%s", p.cmd.ProcessState, p.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("pushd not ready after 30s:\n%s", p.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *pushdProcess) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// delivered reads from the process's /metrics how many pushes it has
// delivered.
func (p *pushdProcess) delivered() int {
	p.t.Helper()
	resp, err := http.Get(p.base + "/metrics")
	if err != nil {
		p.t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for l := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(l, `pushd_pushes_total{app="default",outcome="delivered",reason=""} `); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// kill ends the process with SIGKILL: no shutdown, nothing drained or
// saved, as when a machine or the OOM killer takes it.
func (p *pushdProcess) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// stop sends SIGTERM, and SIGKILL if the process has not stopped 30s later.
func (p *pushdProcess) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if !p.cmd.ProcessState.Success() {
			p.t.Errorf("pushd exited with %v:\n%s", p.cmd.ProcessState, p.output())
		}
	case <-time.After(30 * time.Second):
		p.t.Errorf("pushd did not stop within 30s of SIGTERM:\n%s", p.output())
		p.kill()
	}
}

// TestProviderTokenSharedAcrossRestart is issue 11: two pushd processes of
// one deployment (one .p8 key, one Redis) push a few hundred one-recipient
// jobs; one is SIGKILLed in the middle and started again at once. Apple
// (pushsim) refuses a new provider token for a key within 20 minutes of
// the last, so each process must present the deployment's one token, the
// restarted one included: every push is delivered and none meets 429
// TooManyProviderTokenUpdates.
func TestProviderTokenSharedAcrossRestart(t *testing.T) {
	needRedisDB(t, tokenRedisDB)
	sim := pushsimtest.Start(t, pushsim.Config{})
	database := fmt.Sprintf("{driver: postgres, dsn: %q}", storagetest.PostgresSchemaDSN(t))
	config := writeConfig(t, sim, freeAddr(t), tokenRedisDB, database, p8Creds(t, sim))
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: redisAddr(), DB: tokenRedisDB})
	t.Cleanup(func() { insp.Close() })
	queue := pushjob.PriorityNormal.Queue()

	// The jobs wait on a paused queue until both processes are up, so that
	// both take part.
	if err := insp.PauseQueue(queue); err != nil {
		t.Fatal(err)
	}
	a := startPushdProcess(t, config)
	b := startPushdProcess(t, config)
	api := &e2e{t: t, sim: sim, base: a.base, hc: &http.Client{Timeout: 10 * time.Second}}
	const n = 300
	m := sim.Minter()
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = m.APNs(pushsim.FateValid, pushsim.Production, e2eTopic, uint64(i))
		client := fmt.Sprintf("user-%d", i)
		api.register("iphone-"+client, client, "apns", tokens[i], "production")
		job := map[string]any{"message_id": fmt.Sprintf("share-%d", i), "conversation_id": "conv-s", "recipients": []string{client}}
		if st := api.call("POST", "/v1/push", job, nil); st != http.StatusAccepted {
			t.Fatalf("push %d: %d", i, st)
		}
	}
	// A little latency spreads the run out, so that the kill lands in
	// its middle.
	if _, err := sim.AddFault(pushsim.Fault{Kind: pushsim.FaultLatency, Listener: "apns", Latency: pushsim.Duration(20 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	if err := insp.UnpauseQueue(queue); err != nil {
		t.Fatal(err)
	}
	delivered := func() int64 { return sim.Total("apns-production", http.StatusOK, "") }
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pushsim counts: %+v", sim.Counts())
		}
	})
	waitFor(t, "a third of the pushes delivered", func() bool { return delivered() >= n/3 })

	// Pause again and let the jobs in flight finish before the kill: asynq
	// hands a dead worker's tasks to another only a minute after its
	// lease ran out, which is asynq's recovery, not what this test is
	// about. The process dies holding its provider token and nothing else.
	if err := insp.PauseQueue(queue); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "no job in flight", func() bool {
		qi, err := insp.GetQueueInfo(queue)
		return err == nil && qi.Active == 0
	})
	if got := delivered(); got >= n {
		t.Fatalf("all %d pushes delivered before the kill; the run is too short to test a restart in its middle", got)
	}
	if a.delivered() == 0 || b.delivered() == 0 {
		t.Errorf("before the kill the processes delivered %d and %d pushes: want both to take part", a.delivered(), b.delivered())
	}
	b.kill()
	restarted := startPushdProcess(t, config)
	if err := insp.UnpauseQueue(queue); err != nil {
		t.Fatal(err)
	}

	deadline := time.Now().Add(30 * time.Second)
	for delivered() < n && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := delivered(); got != n {
		t.Errorf("%d of %d pushes delivered after 30s", got, n)
	}
	if restarted.delivered() == 0 {
		t.Error("the restarted process delivered nothing")
	}
	for i, tok := range tokens {
		if rc, ok := sim.Receipt(tok); !ok || rc.Count != 1 {
			t.Errorf("device %d: receipt %+v %v, want exactly one push", i, rc, ok)
			break
		}
	}
	if got := sim.Total("", http.StatusTooManyRequests, "TooManyProviderTokenUpdates"); got != 0 {
		t.Errorf("pushsim answered TooManyProviderTokenUpdates %d times: the processes did not share one provider token", got)
	}
	if got := sim.Total("", http.StatusForbidden, ""); got != 0 {
		t.Errorf("pushsim refused %d provider tokens (403)", got)
	}
}

// waitFor polls cond for up to 30 seconds and fails the test if it never
// holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 30s: not %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
