import FlashSale
import FlashSaleHTTP
import FlashSaleOps
import ServiceLifecycle

/// A server that listens on an address until told to stop (the HTTP and ops servers).
protocol Listener: Sendable {
    /// Binds and starts accepting; returns the bound port (useful with port 0).
    func start(host: String, port: Int) async throws -> Int
    /// Stops accepting, finishes what is in flight (bounded), closes every connection.
    func shutdown() async
}

/// Runs a `Listener` as a service: open while recovery runs (so `/healthz` and ops `STATS`
/// answer during a long recovery), closed on graceful shutdown before the journal's final
/// checkpoint (the group shuts services down in reverse order).
struct ListenerService<Server: Listener>: Service {
    let server: Server
    let address: HostPort
    let onListening: @Sendable (Int) -> Void

    /// A service running `server` on `address`; `onListening` gets the bound port.
    public init(server: Server, address: HostPort, onListening: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.server = server
        self.address = address
        self.onListening = onListening
    }

    /// Listens until graceful shutdown, then stops the server.
    public func run() async throws {
        let port = try await server.start(host: address.host, port: address.port)
        onListening(port)
        try? await gracefulShutdown()
        await server.shutdown()
    }
}

/// The HTTP listener's service.
typealias HTTPService = ListenerService<HTTPServer>
/// The ops listener's service.
typealias OpsService = ListenerService<OpsServer>

extension HTTPServer: Listener {}
extension OpsServer: Listener {}
