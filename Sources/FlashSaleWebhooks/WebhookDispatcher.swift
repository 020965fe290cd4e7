import AsyncHTTPClient
import Crypto
import FlashSale
import FlashSaleJournal
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// How webhook deliveries are paced (the daemon's defaults; tests shorten them).
public struct WebhookTiming: Sendable {
    /// The first retry's delay, ms; each later one doubles it, up to `backoffCapMs`.
    public var backoffBaseMs: Int64 = 1_000
    /// The longest delay between two attempts, ms.
    public var backoffCapMs: Int64 = 5 * 60_000
    /// One attempt's limit from connect to the end of the answer, ms.
    public var requestTimeoutMs: Int64 = 10_000
    /// How often an idle receiver looks for new changes, ms.
    public var idlePollMs: Int64 = 100
    /// Changes read per look.
    public var batch: Int = 100
    /// Journal records committed per second at or above which a sale is taken to be on.
    public var busyRecordsPerSecond: Int = 1_000
    /// Most deliveries per second to one receiver while a sale is on: the rest wait in the
    /// database until the burst is over, and the buyers keep the cores.
    public var busyDeliveriesPerSecond: Int = 200

    /// The defaults.
    public init() {}
}

/// Feeds every `webhooks[]` receiver the change feed (§6): in id order, at least once.
///
/// Each receiver has a task of its own and walks the feed from its durable cursor: one change
/// at a time, POSTed until a 2xx, retried with capped exponential backoff and full jitter, and
/// parked once it has failed for `give_up_after`. After each change its cursor is journaled
/// (`webhookDelivered`), so a restart resumes where delivery stood; a change delivered but not
/// yet recorded is sent again (receivers dedupe by `X-FlashSale-Id`).
///
/// Nothing here is on a buyer's path, nor on a buyer's thread: the feed is read and rendered,
/// and requests go out, on the dispatcher's own threads (`WebhookThreads`), which run below
/// the buyers' priority. In a burst the buyers get the cores and deliveries fall behind; they
/// catch up when it ends. A slow receiver holds only its own task, and the backlog lives in
/// the database, bounded by `changes.retention`.
public final class WebhookDispatcher: Sendable {
    let engine: SaleEngine
    public let feed: FeedConfig
    let threads: WebhookThreads
    let client: HTTPClient
    let timing: WebhookTiming
    let logger: Logger

    /// A dispatcher for `feed`'s receivers, with threads and an HTTP client of its own.
    public init(engine: SaleEngine, feed: FeedConfig, timing: WebhookTiming = WebhookTiming(), logger: Logger) async throws {
        self.engine = engine
        self.feed = feed
        self.threads = try await WebhookThreads.start()
        self.client = Self.makeClient(timing: timing, group: threads.group)
        self.timing = timing
        self.logger = logger
    }

    /// A client as the dispatcher wants it: on `group`, no redirects followed (a 3xx is a
    /// failure), the connect and read timeouts of `timing`.
    static func makeClient(timing: WebhookTiming, group: any EventLoopGroup) -> HTTPClient {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .milliseconds(min(timing.requestTimeoutMs, 5_000)), read: .milliseconds(timing.requestTimeoutMs)))
        configuration.decompression = .disabled
        return HTTPClient(eventLoopGroupProvider: .shared(group), configuration: configuration)
    }

    /// Delivers until cancelled. Every receiver's task runs on the dispatcher's event loop.
    public func run() async {
        await withTaskExecutorPreference(threads.executor) {
            await withDiscardingTaskGroup { group in
                for receiver in feed.receivers {
                    group.addTask { await Receiver(dispatcher: self, config: receiver).run() }
                }
            }
        }
    }

    /// Closes the client and stops the threads; after `run` has returned.
    public func shutdown() async throws {
        try await client.shutdown()
        try await threads.shutdown()
    }
}

/// The threads webhook deliveries run on, niced below the daemon's other threads: one event
/// loop for the receivers' tasks (`executor`) and the HTTP client, and one thread to read and
/// render the feed. On Linux a nice value is a thread's own: the buyers' event loops, the
/// journal writer and Swift's shared pool keep theirs.
final class WebhookThreads: Sendable {
    /// The nice increment: competing for a core with a thread at 0, a thread at +10 gets
    /// about a tenth of it (CFS weights 110 against 1024); an idle core it gets whole.
    static let niceIncrement: Int32 = 10

    let group: MultiThreadedEventLoopGroup
    let pool: NIOThreadPool
    let executor: EventLoopTaskExecutor

    private init(group: MultiThreadedEventLoopGroup, pool: NIOThreadPool) {
        self.group = group
        self.pool = pool
        self.executor = EventLoopTaskExecutor(group.next())
    }

    /// Starts the two threads and lowers their priority.
    static func start() async throws -> WebhookThreads {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        try await group.next().submit { lowerThisThread() }.get()
        try await pool.runIfActive { lowerThisThread() }
        return WebhookThreads(group: group, pool: pool)
    }

    /// Raises the calling thread's nice value by `niceIncrement` (Linux: this thread only).
    private static func lowerThisThread() {
        let which = __priority_which_t(PRIO_PROCESS.rawValue)
        errno = 0
        let current = getpriority(which, 0)
        guard errno == 0 else { return }
        _ = setpriority(which, 0, min(current + niceIncrement, 19))
    }

    func shutdown() async throws {
        try await group.shutdownGracefully()
        try await pool.shutdownGracefully()
    }
}

/// One receiver's delivery loop.
struct Receiver {
    let dispatcher: WebhookDispatcher
    let config: WebhookReceiverConfig
    let key: SymmetricKey
    let delivered: Counter
    let failedAttempts: Counter
    let parked: Counter
    let lag: Gauge

    init(dispatcher: WebhookDispatcher, config: WebhookReceiverConfig) {
        self.dispatcher = dispatcher
        self.config = config
        self.key = SymmetricKey(data: Array(config.secret.utf8))
        let dimensions = [("url", config.url)]
        delivered = Counter(label: "flashsale_webhook_deliveries_total", dimensions: dimensions)
        failedAttempts = Counter(label: "flashsale_webhook_failed_attempts_total", dimensions: dimensions)
        parked = Counter(label: "flashsale_webhook_parked_total", dimensions: dimensions)
        lag = Gauge(label: "flashsale_webhook_lag_seconds", dimensions: dimensions)
    }

    var engine: SaleEngine { dispatcher.engine }
    var timing: WebhookTiming { dispatcher.timing }

    func run() async {
        var cursor = engine.outbox.receiver(config.url)?.deliveredThrough ?? 0
        var pacer = DeliveryPacer(timing: timing)
        while !Task.isCancelled {
            let batch: [StoredChange]
            switch await engine.changes(after: cursor, limit: timing.batch, on: dispatcher.threads.pool) {
            case .success(let changes): batch = changes
            case .failure(let rejection):
                dispatcher.logger.warning("webhook: cannot read the change feed", metadata: ["url": "\(config.url)", "error": "\(rejection.message)"])
                batch = []
            }
            if batch.isEmpty {
                lag.record(0)
                try? await Task.sleep(for: .milliseconds(timing.idlePollMs))
                continue
            }
            for change in batch {
                if let types = config.types, !types.contains(change.type) {
                    cursor = change.id
                    continue
                }
                let wait = pacer.delayNs(nowNs: NIODeadline.now().uptimeNanoseconds, recordsCommitted: engine.journal?.recordsCommitted ?? 0)
                if wait > 0 { try? await Task.sleep(nanoseconds: wait) }
                pacer.delivering(atNs: NIODeadline.now().uptimeNanoseconds)
                guard await deliver(change) else { return }  // cancelled: the cursor stays before it
                cursor = change.id
                record(cursor)
            }
            record(cursor)
        }
    }

    /// Makes `through` the durable cursor (coalesced by the journal into one row).
    private func record(_ through: Int64) {
        guard engine.outbox.receiver(config.url).map({ $0.deliveredThrough < through }) ?? false else { return }
        engine.outbox.update(config.url) { $0.deliveredThrough = through }
        _ = engine.journal?.append(.webhookDelivered(url: config.url, through: through))
    }

    /// Sends `change` until it is delivered or parked (true), or the task is cancelled (false).
    private func deliver(_ change: StoredChange) async -> Bool {
        let firstAttemptMs = engine.clock.nowMs()
        var attempts = 0
        while !Task.isCancelled {
            attempts += 1
            lag.record(Double(max(0, engine.clock.nowMs() - change.atMs)) / 1000)
            let failure = await post(change)
            guard let failure else {
                delivered.increment()
                engine.outbox.update(config.url) {
                    $0.delivered += 1
                    $0.lastError = ""
                }
                return true
            }
            failedAttempts.increment()
            engine.outbox.update(config.url) {
                $0.failedAttempts += 1
                $0.lastError = failure
            }
            let nowMs = engine.clock.nowMs()
            if nowMs - firstAttemptMs >= dispatcher.feed.giveUpAfterMs {
                let parkedDelivery = ParkedDelivery(
                    url: config.url, changeID: change.id, type: change.type, attempts: attempts, lastError: failure, atMs: nowMs)
                _ = engine.journal?.append(.webhookParked(parkedDelivery))
                engine.outbox.park(parkedDelivery)
                parked.increment()
                dispatcher.logger.error(
                    "webhook delivery parked", metadata: ["url": "\(config.url)", "change": "\(change.id)", "attempts": "\(attempts)", "error": "\(failure)"])
                return true
            }
            do {
                try await Task.sleep(for: .milliseconds(backoff(attempt: attempts)))
            } catch {
                return false
            }
        }
        return false
    }

    /// Full jitter over a capped exponential: uniform in 0...min(cap, base × 2^(attempt-1)).
    func backoff(attempt: Int) -> Int64 {
        let exponent = min(attempt - 1, 30)
        let ceiling = min(timing.backoffCapMs, timing.backoffBaseMs << Int64(exponent))
        return Int64.random(in: 0...max(1, ceiling))
    }

    /// One attempt; nil when the receiver answered 2xx, else what went wrong (one word or two,
    /// no spaces: it goes into an ops line).
    private func post(_ change: StoredChange) async -> String? {
        let body = ChangeFeedJSON.event(change)
        let timestamp = String(engine.clock.nowMs() / 1000)
        var request = HTTPClientRequest(url: config.url)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.headers.add(name: "user-agent", value: "flashsaled-webhooks")
        request.headers.add(name: "x-flashsale-id", value: String(change.id))
        request.headers.add(name: "x-flashsale-timestamp", value: timestamp)
        request.headers.add(name: "x-flashsale-signature", value: WebhookSignature.sign(key: key, timestamp: timestamp, id: change.id, body: body))
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await dispatcher.client.execute(request, timeout: .milliseconds(timing.requestTimeoutMs))
            // Read (and drop) the answer, bounded, so the connection can be reused.
            _ = try await response.body.collect(upTo: 64 * 1024)
            return (200..<300).contains(response.status.code) ? nil : "http_\(response.status.code)"
        } catch {
            return Self.describe(error)
        }
    }

    static func describe(_ error: any Error) -> String {
        if let clientError = error as? HTTPClientError {
            switch clientError {
            case .deadlineExceeded, .readTimeout, .connectTimeout, .writeTimeout: return "timeout"
            case .remoteConnectionClosed: return "connection_closed"
            case .bodyLengthMismatch: return "bad_response"
            default: break
            }
        }
        if let channelError = error as? ChannelError, case .connectTimeout = channelError { return "timeout" }
        let text = String(describing: error).lowercased()
        if text.contains("refused") { return "connection_refused" }
        if text.contains("timeout") || text.contains("timed out") { return "timeout" }
        if text.contains("reset") { return "connection_reset" }
        if text.contains("resolve") || text.contains("lookup") || text.contains("dns") { return "dns_failure" }
        return "io_error"
    }
}

/// The `X-FlashSale-Signature` of a delivery: lowercase hex HMAC-SHA256 over
/// `timestamp + "\n" + id + "\n" + body`, keyed with the receiver's secret.
public enum WebhookSignature {
    /// The signature of one delivery.
    public static func sign(key: SymmetricKey, timestamp: String, id: Int64, body: [UInt8]) -> String {
        var mac = HMAC<SHA256>(key: key)
        mac.update(data: Array("\(timestamp)\n\(id)\n".utf8))
        mac.update(data: body)
        return LowercaseHex.encode(mac.finalize())
    }

    /// The signature with a secret given as text.
    public static func sign(secret: String, timestamp: String, id: Int64, body: [UInt8]) -> String {
        sign(key: SymmetricKey(data: Array(secret.utf8)), timestamp: timestamp, id: id, body: body)
    }
}

/// Runs Swift tasks' jobs on one NIO event loop: a task preferring it (and its child tasks)
/// runs between that loop's I/O, on its thread, whatever that thread's priority.
final class EventLoopTaskExecutor: TaskExecutor {
    let loop: any EventLoop

    init(_ loop: any EventLoop) {
        self.loop = loop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

/// Holds a receiver to `busyDeliveriesPerSecond` while a sale is on: while the journal commits
/// `busyRecordsPerSecond` or more (measured over the last tenth of a second). Deliveries cost
/// CPU in the daemon and in a receiver that may share its machine; in a burst that CPU is the
/// buyers'. Outside a burst a receiver is fed as fast as it answers.
struct DeliveryPacer {
    /// How long the journal's rate is measured over, ns.
    static let windowNs: UInt64 = 100_000_000

    let timing: WebhookTiming
    private var windowStartNs: UInt64?
    private var windowStartRecords = 0
    private var lastDeliveryNs: UInt64?
    /// Whether the last window's rate said a sale is on.
    private(set) var busy = false

    init(timing: WebhookTiming) {
        self.timing = timing
    }

    /// How long to wait before the next delivery, ns, at `nowNs` with the journal having
    /// committed `recordsCommitted` records so far.
    mutating func delayNs(nowNs: UInt64, recordsCommitted: Int) -> UInt64 {
        if let start = windowStartNs {
            if nowNs &- start >= Self.windowNs {
                let perSecond = Double(recordsCommitted - windowStartRecords) * 1e9 / Double(nowNs &- start)
                busy = perSecond >= Double(timing.busyRecordsPerSecond)
                windowStartNs = nowNs
                windowStartRecords = recordsCommitted
            }
        } else {
            windowStartNs = nowNs
            windowStartRecords = recordsCommitted
        }
        guard busy, let last = lastDeliveryNs, timing.busyDeliveriesPerSecond > 0 else { return 0 }
        let next = last &+ 1_000_000_000 / UInt64(timing.busyDeliveriesPerSecond)
        return next > nowNs ? next - nowNs : 0
    }

    /// A delivery starts at `atNs`.
    mutating func delivering(atNs: UInt64) {
        lastDeliveryNs = atNs
    }
}
