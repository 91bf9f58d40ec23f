// Package monitor reports to monitor from Go: the same model as the C++ API
// (service, attr, server id, value, ops), batched into datagrams of the
// agent's native lines (docs/socket.md) on its Unix socket. Nothing on the
// report path blocks or panics: a bad name, ops or value is a returned
// Status; an absent agent or a full socket is a counter in Stats.
//
//	client := monitor.New(monitor.Options{ServerID: 7})
//	defer client.Close() // flushes
//	orders := client.Attr("Shop.Api", "Orders.Placed", monitor.SUM|monitor.COUNT)
//	orders.Report(3)
package monitor

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Op is one op of the data model, or several combined with |.
type Op uint32

// The ops (DESIGN.md section 1).
const (
	SUM   Op = 1
	MAX   Op = 2
	MIN   Op = 4
	AVG   Op = 8
	FIRST Op = 16
	LAST  Op = 32
	COUNT Op = 64
	HIST  Op = 128
)

const allOps = 0xFF

// Status is what became of one report. Only OK means it is on its way.
type Status int

const (
	OK       Status = iota
	BadName         // a service or attr name breaks the naming rule
	BadValue        // a negative server id
	BadOps          // no op, or unknown bits
	Closed          // the client was closed
)

func (s Status) String() string {
	return [...]string{"OK", "BadName", "BadValue", "BadOps", "Closed"}[s]
}

// MaxNameBytes bounds a service or attr name.
const MaxNameBytes = 64

// IsValidName reports whether name follows [A-Z][A-Za-z0-9]*(.[A-Z][A-Za-z0-9]*)+ within 64 bytes.
func IsValidName(name string) bool {
	if len(name) == 0 || len(name) > MaxNameBytes {
		return false
	}
	segmentStart, segments := true, 1
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case segmentStart:
			if c < 'A' || c > 'Z' {
				return false
			}
			segmentStart = false
		case c == '.':
			segmentStart = true
			segments++
		case !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9'):
			return false
		}
	}
	return !segmentStart && segments >= 2
}

// NameError is monitorctl's message for a bad name.
func NameError(what, name string) string {
	return fmt.Sprintf("%s name %q is not valid: it must be dot-separated parts that each start with a capital "+
		"letter followed by letters and digits, at least two parts, at most 64 bytes (e.g. Shop.Api)", what, name)
}

// DefaultSocketPath is $MONITOR_SOCKET, else where monitor-agent listens by default.
func DefaultSocketPath() string {
	if p := os.Getenv("MONITOR_SOCKET"); p != "" {
		return p
	}
	if os.Geteuid() == 0 {
		return "/run/monitor/agent.sock"
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "monitor", "agent.sock")
	}
	return fmt.Sprintf("/tmp/monitor-%d/agent.sock", os.Getuid())
}

// Options of a Client; zero values take the defaults.
type Options struct {
	SocketPath      string        // default DefaultSocketPath()
	ServerID        int64         // for Attr.Report
	MaxDatagram     int           // bytes per datagram, default 60000 (at most 65000)
	FlushInterval   time.Duration // default 50 ms
	MaxPendingBytes int           // datagrams kept while the agent's socket is full, default 4 MiB
}

// Stats counts what happened to reports since the client was made.
type Stats struct {
	LinesSent, DatagramsSent                        uint64
	DroppedNoAgent, DroppedSocketFull, DroppedError uint64
	BadNames, BadOps, BadValues                     uint64
	PendingLines                                    uint64 // held: the socket had no room yet
}

type datagram struct {
	data  []byte
	lines uint64
}

// Client batches reports into datagrams to the local agent. Safe for concurrent use.
type Client struct {
	opts         Options
	mu           sync.Mutex
	buf          []byte
	lines        uint64
	pending      []datagram
	pendingBytes int
	conn         *net.UnixConn
	stats        Stats
	closed       bool
	stop         chan struct{}
	done         chan struct{}
}

// New makes a client. It does not connect: the first flush does, and every
// flush tries again while there is no agent.
func New(opts Options) *Client {
	if opts.SocketPath == "" {
		opts.SocketPath = DefaultSocketPath()
	}
	if opts.MaxDatagram <= 0 {
		opts.MaxDatagram = 60000
	}
	if opts.MaxDatagram < 1024 {
		opts.MaxDatagram = 1024
	}
	if opts.MaxDatagram > 65000 {
		opts.MaxDatagram = 65000
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = 50 * time.Millisecond
	}
	if opts.MaxPendingBytes <= 0 {
		opts.MaxPendingBytes = 4 << 20
	}
	c := &Client{opts: opts, buf: make([]byte, 0, opts.MaxDatagram), stop: make(chan struct{}), done: make(chan struct{})}
	go c.flushLoop()
	return c
}

// Attr is a (service, attr, ops) whose names were checked once.
type Attr struct {
	client *Client
	prefix []byte // "Service Attr "
	suffix []byte // " ops 0\n"
	status Status
	// Err is monitorctl's message when the names or ops are bad; nil otherwise.
	Err error
}

// Attr checks the names and ops once; a bad one makes every Report return its Status.
func (c *Client) Attr(service, attr string, ops Op) *Attr {
	a := &Attr{client: c}
	switch {
	case !IsValidName(service):
		a.status, a.Err = BadName, errors.New(NameError("service", service))
	case !IsValidName(attr):
		a.status, a.Err = BadName, errors.New(NameError("attr", attr))
	case ops == 0 || ops > allOps:
		a.status, a.Err = BadOps, fmt.Errorf("ops %d: combine the Op constants (1 to 255)", ops)
	default:
		a.prefix = []byte(service + " " + attr + " ")
		a.suffix = []byte(" " + strconv.FormatUint(uint64(ops), 10) + " 0\n")
	}
	return a
}

// Report reports value for the client's server id.
func (a *Attr) Report(value int64) Status { return a.ReportFor(a.client.opts.ServerID, value) }

// ReportFor reports value for serverID.
func (a *Attr) ReportFor(serverID int64, value int64) Status {
	c := a.client
	if a.status != OK {
		c.count(a.status)
		return a.status
	}
	if serverID < 0 {
		c.count(BadValue)
		return BadValue
	}
	return c.appendLine(func(b []byte) []byte {
		b = append(b, a.prefix...)
		b = strconv.AppendInt(b, serverID, 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, value, 10)
		return append(b, a.suffix...)
	})
}

// Report is monitor(service, attr, server_id, value, op_mask) of the C++ API.
func (c *Client) Report(service, attr string, serverID int64, value int64, ops Op) Status {
	switch {
	case !IsValidName(service) || !IsValidName(attr):
		c.count(BadName)
		return BadName
	case ops == 0 || ops > allOps:
		c.count(BadOps)
		return BadOps
	case serverID < 0:
		c.count(BadValue)
		return BadValue
	}
	return c.appendLine(func(b []byte) []byte {
		b = append(b, service...)
		b = append(b, ' ')
		b = append(b, attr...)
		b = append(b, ' ')
		b = strconv.AppendInt(b, serverID, 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, value, 10)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(ops), 10)
		return append(b, " 0\n"...)
	})
}

func (c *Client) count(s Status) {
	c.mu.Lock()
	switch s {
	case BadName:
		c.stats.BadNames++
	case BadOps:
		c.stats.BadOps++
	case BadValue:
		c.stats.BadValues++
	}
	c.mu.Unlock()
}

func (c *Client) appendLine(write func([]byte) []byte) Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return Closed
	}
	before := len(c.buf)
	c.buf = write(c.buf)
	if len(c.buf) > c.opts.MaxDatagram && before > 0 {
		// The line does not fit: the datagram goes without it, the line starts the next.
		line := append([]byte(nil), c.buf[before:]...)
		c.buf = c.buf[:before]
		c.sendLocked()
		c.buf = append(c.buf, line...)
	}
	c.lines++
	return OK
}

// Flush sends what is batched now. It never blocks on the agent.
func (c *Client) Flush() {
	c.mu.Lock()
	c.sendLocked()
	c.mu.Unlock()
}

func (c *Client) sendLocked() {
	if len(c.buf) > 0 {
		if c.pendingBytes+len(c.buf) > c.opts.MaxPendingBytes && len(c.pending) > 0 {
			c.stats.DroppedSocketFull += c.lines // the agent is this far behind
		} else {
			c.pending = append(c.pending, datagram{append([]byte(nil), c.buf...), c.lines})
			c.pendingBytes += len(c.buf)
		}
		c.buf = c.buf[:0]
		c.lines = 0
	}
	for len(c.pending) > 0 {
		d := c.pending[0]
		if c.conn == nil {
			conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: c.opts.SocketPath, Net: "unixgram"})
			if err != nil {
				c.stats.DroppedNoAgent += d.lines
				c.dropFirst()
				continue
			}
			c.conn = conn
		}
		// One write(2) on the non-blocking socket: EAGAIN comes back at once
		// (conn.Write would park the goroutine until there is room).
		var err error
		if raw, rerr := c.conn.SyscallConn(); rerr != nil {
			err = rerr
		} else if rerr = raw.Write(func(fd uintptr) bool { _, err = syscall.Write(int(fd), d.data); return true }); rerr != nil {
			err = rerr
		}
		if err == nil {
			c.stats.LinesSent += d.lines
			c.stats.DatagramsSent++
			c.dropFirst()
			continue
		}
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.ENOBUFS) {
			return // no room now: kept, tried again at the next flush
		}
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			c.stats.DroppedNoAgent += d.lines // the agent went away: dial again next time
		} else {
			c.stats.DroppedError += d.lines
		}
		c.conn.Close()
		c.conn = nil
		c.dropFirst()
	}
}

func (c *Client) dropFirst() {
	c.pendingBytes -= len(c.pending[0].data)
	c.pending[0] = datagram{}
	c.pending = c.pending[1:]
}

func (c *Client) flushLoop() {
	defer close(c.done)
	ticker := time.NewTicker(c.opts.FlushInterval)
	defer ticker.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-ticker.C:
			c.Flush()
		}
	}
}

// Stats returns the counters; PendingLines are held for the next flush.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.PendingLines = c.lines
	for _, d := range c.pending {
		s.PendingLines += d.lines
	}
	return s
}

// Close flushes, waits up to 2 s for datagrams the agent's socket had no room
// for, and stops the background flush; later reports return Closed. Go has no
// exit hook: defer it in main.
func (c *Client) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.sendLocked()
	// What the agent's socket had no room for yet: a bounded wait for it to
	// drain (Close is not the report path); what is left after 2 s is dropped.
	for deadline := time.Now().Add(2 * time.Second); len(c.pending) > 0 && time.Now().Before(deadline); {
		c.mu.Unlock()
		time.Sleep(time.Millisecond)
		c.mu.Lock()
		c.sendLocked()
	}
	for _, d := range c.pending {
		c.stats.DroppedSocketFull += d.lines
	}
	c.pending, c.pendingBytes = nil, 0
	c.closed = true
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
	c.mu.Unlock()
	close(c.stop)
	<-c.done
}
