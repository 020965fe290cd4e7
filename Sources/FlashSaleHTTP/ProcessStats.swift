// The daemon's own resource use, read from /proc at scrape time for the standard `process_*`
// series (the names Prometheus' client libraries use, so stock dashboards work).

#if canImport(Glibc)
import Glibc
#endif

/// One reading of the process's resources.
struct ProcessStats: Equatable {
    /// User plus system CPU time, seconds.
    var cpuSeconds: Double
    /// Resident memory, bytes.
    var residentBytes: Int
    /// Virtual memory, bytes.
    var virtualBytes: Int
    /// Open file descriptors.
    var openFDs: Int
    /// The soft limit of open file descriptors.
    var maxFDs: Int
    /// Start time, unix seconds.
    var startTimeSeconds: Double

    /// Reads `/proc/self`; nil where there is no procfs.
    static func read() -> ProcessStats? {
        #if os(Linux)
        guard let stat = contents("/proc/self/stat"), let uptime = contents("/proc/uptime") else { return nil }
        guard let stats = parse(stat: stat, uptime: uptime, ticksPerSecond: Double(sysconf(Int32(_SC_CLK_TCK))), pageSize: Int(sysconf(Int32(_SC_PAGESIZE))))
        else { return nil }
        var result = stats
        result.openFDs = openDescriptors()
        var limit = rlimit()
        if getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 { result.maxFDs = Int(clamping: limit.rlim_cur) }
        return result
        #else
        return nil
        #endif
    }

    /// The fields of `/proc/self/stat` (after the parenthesised command name, which may hold
    /// spaces): utime 14, stime 15, starttime 22, vsize 23, rss 24 (in pages); the start time
    /// from the machine's boot, turned into unix seconds with `/proc/uptime`.
    static func parse(stat: String, uptime: String, ticksPerSecond: Double, pageSize: Int, nowSeconds: Double? = nil) -> ProcessStats? {
        guard let close = stat.lastIndex(of: ")") else { return nil }
        // Field 3 is the first after the name.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        func field(_ number: Int) -> Double? { fields.count > number - 3 ? Double(fields[number - 3]) : nil }
        guard let utime = field(14), let stime = field(15), let start = field(22), let vsize = field(23), let rss = field(24),
            let upSeconds = uptime.split(separator: " ").first.flatMap({ Double($0) }), ticksPerSecond > 0
        else { return nil }
        let now = nowSeconds ?? Self.unixNow()
        return ProcessStats(
            cpuSeconds: (utime + stime) / ticksPerSecond, residentBytes: Int(rss) * pageSize, virtualBytes: Int(vsize),
            openFDs: 0, maxFDs: 0, startTimeSeconds: (now - upSeconds + start / ticksPerSecond).rounded())
    }

    private static func unixNow() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    private static func contents(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4_096)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count <= 0 { break }
            bytes.append(contentsOf: buffer[..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func openDescriptors() -> Int {
        guard let directory = opendir("/proc/self/fd") else { return 0 }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            if entry.pointee.d_name.0 != UInt8(ascii: ".") { count += 1 }
        }
        // The directory being read holds a descriptor of its own.
        return max(0, count - 1)
    }
}
