// datadog-go (Debian's golang-github-datadog-datadog-go-dev), as a Go service
// uses it, for tests/statsd/test_statsd_clients.py:
//   statsdsend 127.0.0.1:PORT | statsdsend unix:///path
// This datadog-go predates DD_SERVICE: its users tag the service themselves.
package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/DataDog/datadog-go/statsd"
)

func main() {
	// Buffered, as services that send much configure it: many lines per datagram.
	client, err := statsd.NewBuffered(os.Args[1], 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if strings.HasPrefix(os.Args[1], statsd.UnixAddressPrefix) {
		// The relay in front of the agent is a Python thread: give it time.
		if err := client.SetWriteTimeout(2 * time.Second); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	client.Tags = []string{"service:checkout-go", "env:prod"}
	must := func(err error) {
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	for i := 0; i < 300; i++ {
		must(client.Incr("orders.placed", nil, 1))
		must(client.Count("orders.items", 3, nil, 0.5))
		must(client.Count("http.2xx.requests", 1, []string{"server:3"}, 0.25))
		must(client.Timing("request.latency", time.Duration(10+i)*time.Millisecond, nil, 0.5))
		must(client.Histogram("payload.bytes", float64(100+i), nil, 0.25))
		must(client.Distribution("render.time", float64(i%50), nil, 1))
	}
	must(client.Gauge("queue.depth", 10, nil, 1))
	must(client.Gauge("queue.depth", -5, nil, 1))
	for _, member := range []string{"alice", "bob", "alice", "carol", "bob"} {
		must(client.Set("users.seen", member, nil, 1))
	}
	must(client.SimpleEvent("deploy", "version 1.4.2 is out"))
	must(client.SimpleServiceCheck("checkout.up", statsd.Ok))
	must(client.Close())
}
