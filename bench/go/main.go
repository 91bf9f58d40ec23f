// Issue 11's Go figure: reports per second from one goroutine, with
// bindings/go into a real monitor-agent (Unix socket) that drains them, beside
// datadog-go (Debian's golang-github-datadog-datadog-go-dev, Go's popular
// statsd client, as constructed by statsd.New: unbuffered, a datagram per
// metric) sending the same reports to a UDP socket another goroutine drains.
// Run by bench/binding_go_bench.sh.
package main

import (
	"fmt"
	"net"
	"os"
	"time"

	"github.com/DataDog/datadog-go/statsd"

	monitor "example.com/monitor/client"
)

func main() {
	socket, reports := os.Args[1], 500000
	fmt.Sscan(os.Args[2], &reports)
	sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		panic(err)
	}
	go func() {
		buf := make([]byte, 65536)
		for {
			if _, err := sink.Read(buf); err != nil {
				return
			}
		}
	}()
	ours := func() (time.Duration, monitor.Stats) {
		client := monitor.New(monitor.Options{SocketPath: socket, ServerID: 7})
		orders := client.Attr("Bench.Go", "Orders.Placed", monitor.SUM)
		started := time.Now()
		for i := 0; i < reports; i++ {
			orders.Report(int64(i & 7))
		}
		client.Close()
		return time.Since(started), client.Stats()
	}
	peer := func() time.Duration {
		client, err := statsd.New(sink.LocalAddr().String())
		if err != nil {
			panic(err)
		}
		started := time.Now()
		for i := 0; i < reports; i++ {
			client.Count("bench.go.orders.placed", int64(i&7), nil, 1)
		}
		client.Close()
		return time.Since(started)
	}
	// Ours counts only what reached the agent: a goroutine this fast outruns
	// the agent, and what the bounded queue drops is not a report delivered.
	bestOurs, bestPeer := 0.0, 0.0
	var stats monitor.Stats
	for run := 0; run < 3; run++ {
		d, s := ours()
		if r := float64(s.LinesSent) / d.Seconds(); r > bestOurs {
			bestOurs, stats = r, s
		}
		if r := float64(reports) / peer().Seconds(); r > bestPeer {
			bestPeer = r
		}
	}
	fmt.Printf("%-62s %12s %12s %7s\n", "figure", "ours", "peer", "ratio")
	fmt.Printf("%-62s %12.0f %12.0f %6.2fx   (goal >= 2x; peer: datadog-go Count over UDP)\n",
		fmt.Sprintf("Go, one goroutine: reports/s delivered (best of 3, %d sent)", reports), bestOurs, bestPeer,
		bestOurs/bestPeer)
	fmt.Printf("  ours, best run: %+v\n", stats)
}
