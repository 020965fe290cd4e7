import AsyncHTTPClient
import Crypto
import FlashSale
import FlashSaleJournal
import Logging
import Metrics
import NIOCore
import NIOHTTP1

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

    /// The defaults.
    public init() {}
}

/// Feeds every `webhooks[]` receiver the change feed (contract §6): in id order, at least once.
///
/// Each receiver has a task of its own and walks the feed from its durable cursor: one change
/// at a time, POSTed until a 2xx, retried with capped exponential backoff and full jitter, and
/// parked once it has failed for `give_up_after`. After each change its cursor is journaled
/// (`webhookDelivered`), so a restart resumes where delivery stood; a change delivered but not
/// yet recorded is sent again (receivers dedupe by `X-FlashSale-Id`).
///
/// Nothing here is on a buyer's path: the feed is read from the database on NIO's blocking
/// thread pool, requests go out on the HTTP client's own connections, and a slow receiver
/// holds only its own task. The backlog lives in the database, bounded by `changes.retention`.
public final class WebhookDispatcher: Sendable {
    let engine: SaleEngine
    public let feed: FeedConfig
    let client: HTTPClient
    let timing: WebhookTiming
    let logger: Logger

    /// A dispatcher for `feed`'s receivers, sending with `client`.
    public init(engine: SaleEngine, feed: FeedConfig, client: HTTPClient, timing: WebhookTiming = WebhookTiming(), logger: Logger) {
        self.engine = engine
        self.feed = feed
        self.client = client
        self.timing = timing
        self.logger = logger
    }

    /// A client as the dispatcher wants it: no redirects followed (a 3xx is a failure), the
    /// connect and read timeouts of `timing`.
    public static func makeClient(timing: WebhookTiming = WebhookTiming()) -> HTTPClient {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .milliseconds(min(timing.requestTimeoutMs, 5_000)), read: .milliseconds(timing.requestTimeoutMs)))
        configuration.decompression = .disabled
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// Delivers until cancelled.
    public func run() async {
        await withDiscardingTaskGroup { group in
            for receiver in feed.receivers {
                group.addTask { await Receiver(dispatcher: self, config: receiver).run() }
            }
        }
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
        while !Task.isCancelled {
            let batch: [StoredChange]
            switch await engine.changes(after: cursor, limit: timing.batch) {
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
