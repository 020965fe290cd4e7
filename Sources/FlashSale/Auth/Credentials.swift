import Synchronization

/// The secrets in force: buyer-token keys, the payment key, the ops password and the admin
/// token. A reload replaces them all at once (`replace(with:)`); each check reads the current
/// set, so a rotated buyer-token key works from the next request and a removed one stops.
public final class Credentials: Sendable {
    private struct State {
        var tokens: BuyerTokenVerifier
        var payment: PaymentSignature
        var ops: SharedSecret
        var admin: SharedSecret?
    }

    private let state: Mutex<State>

    /// The credentials of `secrets`.
    public init(_ secrets: Secrets) {
        state = Mutex(Self.state(secrets))
    }

    private static func state(_ secrets: Secrets) -> State {
        State(
            tokens: BuyerTokenVerifier(keys: secrets.tokenKeys), payment: PaymentSignature(secret: secrets.payment),
            ops: SharedSecret(secrets.ops), admin: secrets.admin.map(SharedSecret.init))
    }

    /// Puts `secrets` in force (a fresh verified-token cache with them: a token signed with a
    /// key no longer listed is refused from now on).
    public func replace(with secrets: Secrets) {
        let fresh = Self.state(secrets)
        state.withLock { $0 = fresh }
    }

    /// The buyer-token verifier in force.
    public var tokens: BuyerTokenVerifier { state.withLock { $0.tokens } }
    /// The payment-notification key in force.
    public var payment: PaymentSignature { state.withLock { $0.payment } }
    /// The ops password in force.
    public var ops: SharedSecret { state.withLock { $0.ops } }
    /// The admin token in force; nil: the admin API refuses every call.
    public var admin: SharedSecret? { state.withLock { $0.admin } }
}
