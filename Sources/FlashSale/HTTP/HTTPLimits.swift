/// Hard limits of the HTTP edge, each with its unit and the reason for its size.
public enum HTTPLimits {
    /// Largest request body, bytes: the contract's 16 KiB (`413 too_large` past it).
    public static let bodyBytesMax = 16 * 1024
    /// Longest time to wait for in-flight requests on shutdown, ms: SIGTERM must end in bounded time.
    public static let drainTimeoutMs: Int64 = 10_000
}
