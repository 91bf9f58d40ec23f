#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <string>

#include <catch2/catch.hpp>

#include "agent/host_metrics.hpp"
#include "agent/host_proc.hpp"
#include "support/child_process.hpp"

using namespace monitor::agent;
using namespace monitor::agent::host;

namespace {

std::map<std::string, int64_t> by_attr(const HostRound& round) {
  std::map<std::string, int64_t> out;
  for (const auto& s : round.samples) out[s.attr] = s.value;
  return out;
}

int64_t meminfo_kb(const std::string& key) {
  std::ifstream in("/proc/meminfo");
  std::string name, unit;
  int64_t value = 0;
  while (in >> name >> value) {
    std::getline(in, unit);
    if (name == key + ":") return value;
  }
  FAIL("no " << key << " in /proc/meminfo");
  return 0;
}

// The whole disk holding `path` (the parent of a partition), as /proc/diskstats names it.
std::string disk_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  INFO("the test directory must be on a block device (not tmpfs or overlay): " << path);
  REQUIRE(major(st.st_dev) != 0);
  std::filesystem::path dev = std::filesystem::canonical(
      "/sys/dev/block/" + std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev)));
  if (std::filesystem::exists(dev / "partition")) dev = dev.parent_path();
  return dev.filename().string();
}

}  // namespace

TEST_CASE("the /proc readers take the kernel's formats", "[host]") {
  const ProcStat stat = parse_stat(
      "cpu  100 20 30 400 5 6 7 8 0 0\ncpu0 50 10 15 200 2 3 3 4 0 0\ncpu1 50 10 15 200 3 3 4 4 0 0\n"
      "intr 1 2 3\nctxt 12345\nbtime 1\nprocesses 777\nprocs_running 3\nprocs_blocked 1\n");
  CHECK(stat.all.user == 100);
  CHECK(stat.all.steal == 8);
  CHECK(stat.all.total() == 576);
  CHECK(stat.all.busy() == 576 - 400 - 5);
  CHECK(stat.cores.size() == 2);
  CHECK(stat.context_switches == 12345);
  CHECK(stat.forks == 777);
  CHECK(stat.procs_running == 3);
  CHECK(stat.procs_blocked == 1);

  const auto load = parse_loadavg("2.12 1.4 11.27 4/113 11470\n");
  REQUIRE(load);
  CHECK(load->one == 212);
  CHECK(load->five == 140);
  CHECK(load->fifteen == 1127);
  CHECK_FALSE(parse_loadavg("garbage"));

  const MemInfo mem = parse_meminfo("MemTotal:       1000 kB\nMemFree: 200 kB\nMemAvailable:   600 kB\n"
                                    "Buffers: 10 kB\nCached:  300 kB\nSwapCached: 0 kB\nSwapTotal: 50 kB\n"
                                    "SwapFree: 20 kB\nHugePages_Total: 0\n");
  CHECK(mem.total == 1000 * 1024);
  CHECK(mem.available == 600 * 1024);
  CHECK(mem.cached == 300 * 1024);  // not SwapCached
  CHECK(mem.swap_total - mem.swap_free == 30 * 1024);

  const auto mounts = parse_mounts("/dev/vda / ext4 rw,relatime 0 0\n/dev/sdb1 /mnt/my\\040disk xfs ro,noatime 0 0\n"
                                   "short line\n");
  REQUIRE(mounts.size() == 2);
  CHECK(mounts[1].point == "/mnt/my disk");
  CHECK(mounts[1].read_only);
  CHECK_FALSE(mounts[0].read_only);

  const auto disks = parse_diskstats(
      " 253       0 vda 1000 5 8000 300 2000 7 16000 900 0 1500 1200 0 0 0 0 0 0\n 7 0 loop0 1 2\n");
  REQUIRE(disks.size() == 1);
  CHECK(disks[0].name == "vda");
  CHECK(disks[0].reads == 1000);
  CHECK(disks[0].read_sectors == 8000);
  CHECK(disks[0].writes == 2000);
  CHECK(disks[0].write_sectors == 16000);
  CHECK(disks[0].io_ms == 1500);

  const auto nets = parse_net_dev(
      "Inter-|   Receive |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes\n"
      "  eth0: 1000 10 1 2 0 0 0 0 2000 20 3 4 0 0 0 0\n");
  REQUIRE(nets.size() == 1);
  CHECK(nets[0].name == "eth0");
  CHECK(nets[0].in_bytes == 1000);
  CHECK(nets[0].in_drops == 2);
  CHECK(nets[0].out_bytes == 2000);
  CHECK(nets[0].out_errors == 3);

  const std::string snmp = "Ip: Forwarding DefaultTTL\nIp: 1 64\nTcp: RtoAlgorithm CurrEstab RetransSegs\n"
                           "Tcp: 1 17 563\nUdp: InDatagrams\nUdp: 5\n";
  CHECK(parse_keyed_table(snmp, "Tcp", "CurrEstab") == 17);
  CHECK(parse_keyed_table(snmp, "Tcp", "RetransSegs") == 563);
  CHECK_FALSE(parse_keyed_table(snmp, "Tcp", "Nope"));
  CHECK(parse_keyed_table("TcpExt: A ListenOverflows\nTcpExt: 1 9\n", "TcpExt", "ListenOverflows") == 9);
  CHECK(parse_sockstat_time_wait("sockets: used 7\nTCP: inuse 1 orphan 0 tw 8 alloc 1 mem 328\n") == 8);
  const auto files = parse_file_nr("242\t10\t2471007\n");
  REQUIRE(files);
  CHECK(files->used == 232);
  CHECK(files->max == 2471007);
  CHECK(parse_uptime("63886.15 102142.82\n") == 63886);
}

TEST_CASE("device names become attr segments by the documented mapping", "[host]") {
  CHECK(device_segment("/") == "Root");
  CHECK(device_segment("/var/lib") == "VarLib");
  CHECK(device_segment("/boot/efi") == "BootEfi");
  CHECK(device_segment("eth0") == "Eth0");
  CHECK(device_segment("veth-a") == "VethA");
  CHECK(device_segment("nvme0n1") == "Nvme0n1");
  CHECK(device_segment("dm-0") == "Dm0");
  CHECK(device_segment("0weird") == "N0weird");
  CHECK(device_segment("---") == "");
  CHECK(device_segment("/a/very/long/mount/point/name/here").size() <= 24);
}

TEST_CASE("a counter that goes down (reset, re-created device) gives no value, never a negative or huge one",
          "[host]") {
  CounterDeltas deltas;
  CHECK_FALSE(deltas.delta("Net.Eth0.InBytes", 1000));  // the first value is a baseline
  deltas.end_round();
  CHECK(deltas.delta("Net.Eth0.InBytes", 1500) == 500);
  deltas.end_round();
  CHECK_FALSE(deltas.delta("Net.Eth0.InBytes", 40));  // re-created: counts from zero again
  CHECK(deltas.resets() == 1);
  deltas.end_round();
  CHECK(deltas.delta("Net.Eth0.InBytes", 100) == 60);
  deltas.end_round();
  deltas.end_round();  // a round without it: the interface went away, and is forgotten
  CHECK_FALSE(deltas.delta("Net.Eth0.InBytes", 5'000'000'000));
  deltas.end_round();
  CHECK(deltas.delta("Net.Eth0.InBytes", 5'000'000'100) == 100);
}

TEST_CASE("on this host, memory and the root filesystem are what /proc/meminfo and statvfs say", "[host]") {
  HostMetricsOptions options;
  // Whatever the root filesystem is here (overlay in a container), it is reported.
  options.skip_fs_types = {"proc", "sysfs", "devtmpfs", "devpts", "cgroup*", "mqueue", "tmpfs"};
  HostSampler sampler(options);
  const auto first = by_attr(sampler.collect());
  CHECK(first.at("Mem.TotalBytes") == meminfo_kb("MemTotal") * 1024);
  // Memory moves between two reads: within 64 MiB of what the test reads the same moment.
  CHECK(std::abs(first.at("Mem.AvailableBytes") - meminfo_kb("MemAvailable") * 1024) < (64 << 20));
  CHECK(first.at("Mem.UsedBytes") == first.at("Mem.TotalBytes") - first.at("Mem.AvailableBytes"));
  struct statvfs root {};
  REQUIRE(::statvfs("/", &root) == 0);
  CHECK(first.at("Fs.Root.TotalBytes") == static_cast<int64_t>(root.f_blocks * root.f_frsize));
  CHECK(std::abs(first.at("Fs.Root.FreeBytes") - static_cast<int64_t>(root.f_bavail * root.f_frsize)) < (64 << 20));
  CHECK(first.at("Fs.Root.UsedInodes") + first.at("Fs.Root.FreeInodes") <= static_cast<int64_t>(root.f_files));
  CHECK(first.at("Cpu.Cores") == static_cast<int64_t>(::sysconf(_SC_NPROCESSORS_CONF)));
  CHECK_FALSE(first.contains("Cpu.Busy"));  // shares need two rounds
  CHECK(first.at("Uptime.Seconds") > 0);
  ::usleep(200'000);
  const auto second = by_attr(sampler.collect());
  REQUIRE(second.contains("Cpu.Busy"));
  CHECK(second.at("Cpu.Busy") >= 0);
  CHECK(second.at("Cpu.Busy") <= 10000);
  CHECK(second.at("Cpu.Busy") + second.at("Cpu.Idle") + second.at("Cpu.Iowait") >= 9990);  // rounding of each share
  CHECK(second.at("Cpu.ContextSwitches") > 0);
  CHECK(sampler.counters().read_errors == 0);
}

TEST_CASE("writing 64 MiB with fsync raises the disk's written bytes by at least 64 MiB", "[host]") {
  // In the build tree, not /tmp (often tmpfs).
  const std::string dir = std::filesystem::current_path() / ("host-metrics-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string disk = disk_of(dir);
  HostMetricsOptions options;
  options.skip_disks.clear();  // whatever the device is (a dm-0, a partition's parent)
  HostSampler sampler(options);
  const std::string attr = "Disk." + device_segment(disk) + ".WriteBytes";
  (void)sampler.collect();  // the baseline
  {
    const int fd = ::open((dir + "/blob").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    REQUIRE(fd >= 0);
    const std::string chunk(1 << 20, 'x');
    for (int i = 0; i < 64; ++i) REQUIRE(::write(fd, chunk.data(), chunk.size()) == static_cast<ssize_t>(chunk.size()));
    REQUIRE(::fsync(fd) == 0);
    ::close(fd);
  }
  const auto after = by_attr(sampler.collect());
  std::filesystem::remove_all(dir);
  INFO("disk " << disk);
  REQUIRE(after.contains(attr));
  CHECK(after.at(attr) >= (64 << 20));
  CHECK(after.at("Disk." + device_segment(disk) + ".Writes") > 0);
}

TEST_CASE("a hung or missing /proc is counted, not a crash or a stall", "[host]") {
  HostMetricsOptions options;
  options.proc_root = "/nonexistent-proc";
  HostSampler sampler(options);
  const HostRound round = sampler.collect();
  CHECK(sampler.counters().read_errors >= 5);
  // Only what does not come from /proc: the clock.
  for (const auto& s : round.samples) CHECK(s.attr.starts_with("Clock."));
}

TEST_CASE("past max_devices, and for names that map to a taken segment, devices are skipped and counted",
          "[host]") {
  const std::filesystem::path root = std::filesystem::current_path() / ("fake-proc-" + std::to_string(::getpid()));
  std::filesystem::create_directories(root / "net");
  {
    std::ofstream dev(root / "net/dev");
    dev << "h1|\nh2|\n";
    for (const char* name : {"eth0", "eth1", "eth2", "eth-0", "eth3", "eth4"}) {
      dev << "  " << name << ": 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0\n";
    }
  }
  HostMetricsOptions options;
  options.proc_root = root.string();
  options.max_devices = 4;
  HostSampler sampler(options);
  (void)sampler.collect();
  const auto round = by_attr(sampler.collect());
  std::filesystem::remove_all(root);
  CHECK(round.contains("Net.Eth0.InBytes"));
  CHECK(round.contains("Net.Eth3.InBytes"));
  CHECK_FALSE(round.contains("Net.Eth4.InBytes"));
  // Per round: eth-0 (its segment, Eth0, is eth0's) and eth4 (past the bound).
  CHECK(sampler.counters().devices_skipped == 4);
}

namespace {

// In a network namespace of this process's own (and a user namespace, when
// not root, so `ip` may make links in it): true if it is ready.
bool enter_own_network_namespace() {
  const uid_t uid = ::geteuid();
  const gid_t gid = ::getegid();
  if (uid == 0) return ::unshare(CLONE_NEWNET) == 0;
  if (::unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0) return false;
  auto write = [](const char* path, const std::string& text) {
    std::ofstream out(path);
    out << text;
    return static_cast<bool>(out.flush());
  };
  return write("/proc/self/setgroups", "deny") && write("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1") &&
         write("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1");
}

// Sends `frames` Ethernet frames of `bytes` each (header included) out of `ifname`.
bool send_frames(const char* ifname, int frames, size_t bytes) {
  const int fd = ::socket(AF_PACKET, SOCK_RAW, 0);
  if (fd < 0) return false;
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_ifindex = static_cast<int>(::if_nametoindex(ifname));
  to.sll_halen = 6;
  std::string frame(bytes, '\0');
  std::memset(frame.data(), 0xff, 6);                     // broadcast destination
  const unsigned char source[6] = {0x02, 0, 0, 0, 0, 1};  // a local address
  std::memcpy(frame.data() + 6, source, 6);
  frame[12] = static_cast<char>(0x88);  // EtherType 0x88b5: local experimental
  frame[13] = static_cast<char>(0xb5);
  bool ok = to.sll_ifindex != 0;
  for (int i = 0; ok && i < frames; ++i) {
    ok = ::sendto(fd, frame.data(), frame.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) ==
         static_cast<ssize_t>(frame.size());
  }
  ::close(fd);
  return ok;
}

}  // namespace

// /proc/net/dev counts Ethernet frames with their 14-byte header and without
// FCS (docs/host-metrics.md): N bytes of payload in F frames are N + 14 F.
TEST_CASE("frames sent over a veth pair in a namespace of the test's own raise both ends' counters by exactly their "
          "bytes, and the pair deleted and re-created gives no negative or huge value",
          "[host][netns]") {
  auto child = monitor::test::ChildProcess::fork_run([] {
    if (!enter_own_network_namespace()) return 10;
    // No IPv6 autoconfiguration traffic on the links: only the test's frames.
    std::ofstream("/proc/sys/net/ipv6/conf/default/disable_ipv6") << "1";
    std::ofstream("/proc/sys/net/ipv6/conf/all/disable_ipv6") << "1";
    const char* make = "ip link add va type veth peer name vb && ip link set va up && ip link set vb up";
    if (std::system(make) != 0) return 11;
    HostMetricsOptions options;
    options.skip_interfaces = {"lo"};
    HostSampler sampler(options);
    (void)sampler.collect();
    constexpr int kFrames = 100;
    constexpr size_t kPayload = 986;
    if (!send_frames("va", kFrames, 14 + kPayload)) return 12;
    auto round = by_attr(sampler.collect());
    const int64_t expected = kFrames * (kPayload + 14);
    if (round["Net.Va.OutBytes"] != expected) return 13;
    if (round["Net.Vb.InBytes"] != expected) return 14;
    if (round["Net.Va.OutPackets"] != kFrames || round["Net.Vb.InPackets"] != kFrames) return 15;
    // Deleted and made again between two rounds: its counters start from 0.
    if (std::system("ip link del va && ip link add va type veth peer name vb && ip link set va up && "
                    "ip link set vb up") != 0) {
      return 16;
    }
    if (!send_frames("va", 3, 14 + kPayload)) return 17;
    round = by_attr(sampler.collect());
    for (const auto& [attr, value] : round) {
      if (attr.starts_with("Net.") && (value < 0 || value > (1 << 20))) return 18;
    }
    if (sampler.counters().counter_resets == 0) return 19;
    if (!send_frames("va", 10, 14 + kPayload)) return 20;
    round = by_attr(sampler.collect());
    return round["Net.Va.OutBytes"] == 10 * static_cast<int64_t>(kPayload + 14) ? 0 : 21;
  });
  const auto rc = child.wait_for(std::chrono::seconds(30));
  INFO("10: no namespace; 11: ip link add failed; 12/17/20: sending failed; 13-15: counts of the first frames; "
       "16: re-creating; 18: a negative or huge value; 19: no reset seen; 21: counts after re-creating");
  REQUIRE(rc.has_value());
  CHECK(*rc == 0);
}

namespace {

// A mount point whose statvfs() hangs until released, as on an NFS server gone.
std::mutex hang_mutex;
std::condition_variable hang_released;
bool released = false;
std::atomic<int> hung_calls{0};

int hanging_statvfs(const char* path, struct statvfs* out) {
  if (std::string_view(path) != "/hangs") return ::statvfs(path, out);
  hung_calls.fetch_add(1);
  std::unique_lock lock(hang_mutex);
  hang_released.wait(lock, [] { return released; });
  return ::statvfs("/", out);
}

}  // namespace

TEST_CASE("a mount whose statvfs hangs is skipped after the timeout, counted, not asked again while it hangs, and "
          "reported once it answers",
          "[host][statvfs]") {
  const std::filesystem::path root = std::filesystem::current_path() / ("hung-proc-" + std::to_string(::getpid()));
  std::filesystem::create_directories(root / "self");
  std::ofstream(root / "self/mounts") << "/dev/sda1 / ext4 rw 0 0\nserver:/export /hangs nfs4 rw 0 0\n";
  HostMetricsOptions options;
  options.proc_root = root.string();
  options.statvfs_timeout_ms = 100;
  options.statvfs_fn = hanging_statvfs;
  HostSampler sampler(options);
  // A collection that never returned would hang this test: bounded by a future.
  auto collect = [&] {
    auto pending = std::async(std::launch::async, [&] { return by_attr(sampler.collect()); });
    REQUIRE(pending.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
    return pending.get();
  };
  auto first = collect();
  CHECK(first.contains("Fs.Root.TotalBytes"));
  CHECK_FALSE(first.contains("Fs.Hangs.TotalBytes"));
  CHECK(sampler.counters().statvfs_timed_out == 1);
  auto second = collect();
  CHECK_FALSE(second.contains("Fs.Hangs.TotalBytes"));
  CHECK(sampler.counters().statvfs_timed_out == 2);
  CHECK(hung_calls == 1);  // not a thread more per round while the first is stuck
  {
    std::lock_guard lock(hang_mutex);
    released = true;
  }
  hang_released.notify_all();
  std::map<std::string, int64_t> third;
  CHECK(monitor::test::wait_until([&] { return (third = collect()).contains("Fs.Hangs.TotalBytes"); }, std::chrono::seconds(10)));
  CHECK(hung_calls == 2);
  std::filesystem::remove_all(root);
}
