import ServiceLifecycle

/// Runs the ops listener: open before recovery ends (so `STATS` answers during a long
/// recovery), closed on graceful shutdown before the journal's final checkpoint.
public struct OpsService: Service {
    let server: OpsServer
    let address: HostPort
    let onListening: @Sendable (Int) -> Void

    /// A service running `server` on `address`; `onListening` gets the bound port.
    public init(server: OpsServer, address: HostPort, onListening: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.server = server
        self.address = address
        self.onListening = onListening
    }

    /// Listens until graceful shutdown, then closes every connection.
    public func run() async throws {
        let port = try await server.start(host: address.host, port: address.port)
        onListening(port)
        try? await gracefulShutdown()
        await server.shutdown()
    }
}
