import Synchronization

/// The secrets in force: buyer-token keys, the payment key, the ops password and the admin
/// token. A reload replaces them all at once (`replace(with:)`); each check reads the current
/// set, so a rotated buyer-token key works from the next request and a removed one stops.
public final class Credentials: Sendable {
    /// One set of secrets in force, never changed: a reload puts another in its place, so a
    /// request reads one reference under the lock and checks against a consistent set.
    public final class Snapshot: Sendable {
        /// The buyer-token verifier.
        public let tokens: BuyerTokenVerifier
        /// The payment-notification key.
        public let payment: PaymentSignature
        /// The ops password.
        public let ops: SharedSecret
        /// The admin token; nil: the admin API refuses every call.
        public let admin: SharedSecret?

        init(_ secrets: Secrets) {
            tokens = BuyerTokenVerifier(keys: secrets.tokenKeys)
            payment = PaymentSignature(secret: secrets.payment)
            ops = SharedSecret(secrets.ops)
            admin = secrets.admin.map(SharedSecret.init)
        }
    }

    private let state: Mutex<Snapshot>

    /// The credentials of `secrets`.
    public init(_ secrets: Secrets) {
        state = Mutex(Snapshot(secrets))
    }

    /// Puts `secrets` in force (a fresh verified-token cache with them: a token signed with a
    /// key no longer listed is refused from now on).
    public func replace(with secrets: Secrets) {
        let fresh = Snapshot(secrets)
        state.withLock { $0 = fresh }
    }

    /// The set in force.
    public var current: Snapshot { state.withLock { $0 } }
    /// The buyer-token verifier in force.
    public var tokens: BuyerTokenVerifier { current.tokens }
    /// The payment-notification key in force.
    public var payment: PaymentSignature { current.payment }
    /// The ops password in force.
    public var ops: SharedSecret { current.ops }
    /// The admin token in force; nil: the admin API refuses every call.
    public var admin: SharedSecret? { current.admin }
}
