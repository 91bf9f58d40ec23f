// A Go service's reports. Run beside a monitor-agent (scripts/demo.sh starts
// one; MONITOR_SOCKET names its socket):
//
//	MONITOR_SOCKET=$PWD/.data/demo/agent.sock go run ./example
package main

import (
	"fmt"
	"math/rand"
	"time"

	monitor "example.com/monitor/client"
)

func main() {
	client := monitor.New(monitor.Options{ServerID: 7})
	defer client.Close() // flushes what is batched
	orders := client.Attr("Shop.Api", "Orders.Placed", monitor.SUM)
	latency := client.Attr("Shop.Api", "Request.LatencyUs", monitor.HIST)
	for i := 0; i < 10000; i++ {
		started := time.Now()
		// ... handle a request ...
		latency.Report(time.Since(started).Microseconds() + int64(100+rand.Intn(800)))
		if rand.Intn(4) == 0 {
			orders.Report(1)
		}
	}
	client.Flush()
	fmt.Printf("%+v\n", client.Stats())
}
