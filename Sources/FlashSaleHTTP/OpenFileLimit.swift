#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The process's open-file limit (`RLIMIT_NOFILE`): every connection is a file descriptor, so
/// `HTTPLimits.connectionsMax` means nothing unless this limit is above it.
///
/// Service managers start daemons with a soft limit of 1 024 and a much higher hard limit; the
/// daemon raises its soft limit itself (as nginx's `worker_rlimit_nofile` or Go's runtime do)
/// rather than rely on every unit file saying `LimitNOFILE=`.
public enum OpenFileLimit {
    /// The soft and hard limits now, descriptors; nil if they cannot be read.
    public static func current() -> (soft: Int, hard: Int)? {
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0 else { return nil }
        return (clamp(limit.rlim_cur), clamp(limit.rlim_max))
    }

    /// Raises the soft limit to `wanted` descriptors, or to the hard limit if that is lower
    /// (and, with the privilege to do so, the hard limit too); never lowers it. Returns the
    /// soft limit now.
    @discardableResult
    public static func raise(to wanted: Int) -> Int {
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0 else { return 0 }
        let target = rlim_t(wanted)
        if limit.rlim_cur >= target { return clamp(limit.rlim_cur) }
        if limit.rlim_max < target {
            // Only a privileged process may raise the hard limit; if refused, the hard limit stands.
            var both = limit
            both.rlim_cur = target
            both.rlim_max = target
            if setrlimit(resource, &both) == 0 { return wanted }
        }
        limit.rlim_cur = min(target, limit.rlim_max)
        _ = setrlimit(resource, &limit)
        return current()?.soft ?? 0
    }

    #if canImport(Glibc)
    private static let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #else
    private static let resource = RLIMIT_NOFILE
    #endif

    private static func clamp(_ value: rlim_t) -> Int {
        value >= rlim_t(Int.max) ? Int.max : Int(value)
    }
}
