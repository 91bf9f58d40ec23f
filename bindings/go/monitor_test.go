package monitor

// Against a real monitor-agent (MONITOR_AGENT names its binary; ctest sets it
// to the build's): its per-second aggregates equal what was sent; bad input
// is a Status; an absent or stopped agent never blocks the caller.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

type agent struct {
	cmd            *exec.Cmd
	socket, output string
	ring           string
}

func startAgent(t *testing.T) *agent {
	t.Helper()
	binary := os.Getenv("MONITOR_AGENT")
	if binary == "" {
		t.Fatal("set MONITOR_AGENT to a monitor-agent binary (ctest does)")
	}
	dir := t.TempDir()
	a := &agent{socket: filepath.Join(dir, "agent.sock"), output: filepath.Join(dir, "aggregates.jsonl"),
		ring: fmt.Sprintf("/mt-go-%d-%d", os.Getpid(), time.Now().UnixNano()%100000)}
	log, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	a.cmd = exec.Command(binary, "--ring", a.ring, "--socket", a.socket, "--output", a.output, "--journal", "none",
		"--spool-dir", filepath.Join(dir, "spool"), "--no-self-metrics", "--no-host-metrics")
	a.cmd.Stderr = log
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a.cmd.Process.Signal(syscall.SIGCONT)
		a.cmd.Process.Signal(syscall.SIGTERM)
		a.cmd.Wait()
		os.Remove("/dev/shm" + a.ring)
	})
	waitFor(t, 10*time.Second, "the agent's socket", func() bool { _, err := os.Stat(a.socket); return err == nil })
	return a
}

func waitFor(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(timeout); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("%s did not happen within %v", what, timeout)
}

type key struct {
	attr   string
	server int64
	op     string
}

// totals sums every second the agent wrote: value, or count for HIST.
func (a *agent) totals() map[key]int64 {
	out := map[key]int64{}
	f, err := os.Open(a.output)
	if err != nil {
		return out
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		var row struct {
			Attr     string `json:"attr"`
			ServerID int64  `json:"server_id"`
			Op       string `json:"op"`
			Value    int64  `json:"value"`
			Count    int64  `json:"count"`
		}
		if json.Unmarshal(scanner.Bytes(), &row) != nil {
			continue
		}
		v := row.Value
		if row.Op == "HIST" {
			v = row.Count
		}
		out[key{row.Attr, row.ServerID, row.Op}] += v
	}
	return out
}

func TestBadInputIsAStatus(t *testing.T) {
	c := New(Options{SocketPath: "/nonexistent/agent.sock"})
	defer c.Close()
	cases := []struct {
		got, want Status
	}{
		{c.Report("shop.api", "Orders.Placed", 1, 1, SUM), BadName},
		{c.Report("Shop.Api", "Orders", 1, 1, SUM), BadName},
		{c.Report("A."+strings.Repeat("B", 63), "Orders.Placed", 1, 1, SUM), BadName},
		{c.Report("Shop.Api", "Orders.Placed", 1, 1, 0), BadOps},
		{c.Report("Shop.Api", "Orders.Placed", 1, 1, 256), BadOps},
		{c.Report("Shop.Api", "Orders.Placed", -1, 1, SUM), BadValue},
	}
	for i, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("case %d: %v, want %v", i, tc.got, tc.want)
		}
	}
	a := c.Attr("Shop.Api", "orders", SUM)
	if a.Report(1) != BadName || a.Err == nil || a.Err.Error() != NameError("attr", "orders") {
		t.Errorf("a bad attr handle: %v", a.Err)
	}
	if s := c.Stats(); s.BadNames != 4 || s.BadOps != 2 || s.BadValues != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestAnAbsentAgentIsCounted(t *testing.T) {
	c := New(Options{SocketPath: "/nonexistent/agent.sock"})
	for i := 0; i < 100; i++ {
		if c.Report("Shop.Api", "Orders.Placed", 1, int64(i), SUM) != OK {
			t.Fatal("a report to an absent agent is batched: OK")
		}
	}
	c.Close()
	if s := c.Stats(); s.DroppedNoAgent != 100 || s.LinesSent != 0 {
		t.Errorf("stats %+v", s)
	}
	if c.Report("Shop.Api", "Orders.Placed", 1, 1, SUM) != Closed {
		t.Error("a closed client says so")
	}
}

func TestTheAgentsAggregatesEqualWhatWasSent(t *testing.T) {
	a := startAgent(t)
	c := New(Options{SocketPath: a.socket, ServerID: 7, MaxDatagram: 4000})
	orders := c.Attr("Go.Test", "Orders.Placed", SUM|COUNT|MAX)
	latency := c.Attr("Go.Test", "Latency.Us", HIST)
	want := map[key]int64{}
	for i := 0; i < 3000; i++ {
		server := int64(1 + i%3)
		if orders.ReportFor(server, int64(i%11)) != OK {
			t.Fatal("report")
		}
		want[key{"Orders.Placed", server, "SUM"}] += int64(i % 11)
		want[key{"Orders.Placed", server, "COUNT"}]++
	}
	for i := 0; i < 500; i++ {
		latency.Report(int64(100 + i*3))
	}
	want[key{"Latency.Us", 7, "HIST"}] = 500
	c.Report("Go.Test", "Queue.Depth", 2, -5, SUM)
	want[key{"Queue.Depth", 2, "SUM"}] = -5
	c.Flush()
	var got map[key]int64
	waitFor(t, 15*time.Second, "the agent's aggregates to reach what was sent", func() bool {
		got = a.totals()
		for k, v := range want {
			if got[k] != v {
				return false
			}
		}
		return true
	})
	c.Close()
	if s := c.Stats(); s.LinesSent != 3501 || s.DroppedNoAgent+s.DroppedSocketFull+s.DroppedError != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestAStoppedAgentNeverStallsTheCaller(t *testing.T) {
	a := startAgent(t)
	c := New(Options{SocketPath: a.socket})
	a.cmd.Process.Signal(syscall.SIGSTOP) // its socket fills and stays full
	started := time.Now()
	const n = 400000
	for i := 0; i < n; i++ {
		c.Report("Go.Test", "Flood.Count", 1, 1, SUM)
	}
	c.Flush()
	elapsed := time.Since(started)
	s := c.Stats()
	a.cmd.Process.Signal(syscall.SIGCONT)
	if s.DroppedSocketFull == 0 || s.LinesSent+s.PendingLines+s.DroppedSocketFull != n {
		t.Errorf("stats %+v", s)
	}
	t.Logf("%d reports into a stopped agent returned in %v; %+v", n, elapsed, s)
	waitFor(t, 10*time.Second, "the pending datagrams sent", func() bool { c.Flush(); return c.Stats().PendingLines == 0 })
	c.Close()
}
