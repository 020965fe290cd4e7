// Auth: buyer tokens (JWT HS256), payment-notification signatures and the nonce cache.
// All MACs come from swift-crypto and are compared in constant time; nothing here does I/O
// or reads a clock (time comes in as `nowSeconds`).

import Crypto
import Synchronization

/// Why a buyer token was refused; every case is `401 unauthorized` to the client.
public enum TokenRejection: Error, Sendable, Equatable {
    /// No token: no `Authorization` header, an empty one, or an empty token.
    case missing
    /// Not a well-formed JWT: wrong scheme, not three segments, bad base64url, not JSON,
    /// over `EngineLimits.tokenBytesMax`, or `exp`/`nbf` missing or not numbers.
    case malformed
    /// The HMAC-SHA256 signature does not match.
    case badSignature
    /// The header's `alg` is not `HS256` (including `none` and a missing `alg`).
    case unsupportedAlgorithm
    /// Outside the token's validity window: `exp` has passed or `nbf` is still ahead.
    case expired
    /// `sub` is missing or is not a user id (`[A-Za-z0-9._-]{1,64}`).
    case badSubject
}

/// A key buyer tokens are signed with: its id (the JWT header's `kid`), nil for the key of
/// tokens without one, and the secret whose UTF-8 bytes are the HMAC key.
public struct TokenKey: Sendable, Equatable, CustomStringConvertible {
    /// The key id, `[A-Za-z0-9._-]{1,64}`; nil: tokens without `kid`.
    public var kid: String?
    /// The HMAC key.
    public var secret: String

    /// A key.
    public init(kid: String?, secret: String) {
        self.kid = kid
        self.secret = secret
    }

    /// The id only: a key is never printed.
    public var description: String { "TokenKey(kid: \(kid ?? "none"))" }
}

/// Checks buyer tokens: JWTs signed HS256 with one of the config's buyer-token keys
/// (`secrets.user_token`, `secrets.user_tokens`; §3.1). A token with a `kid` in its
/// header is checked with that key, one without with the key that has no id (or, when every
/// key has one, the first); a `kid` naming no key is checked with the key without an id, and
/// is a bad signature when every key has one.
///
/// Checks run in this order, and the first failure is the answer: size and shape
/// (`malformed`), the header's `alg` (`unsupportedAlgorithm`), the signature (`badSignature`),
/// then the claims: `exp` required and `nbf` optional, both numbers (`malformed`), now within
/// `[nbf, exp)` (`expired`), `sub` (`badSubject`). The payload is parsed only once the
/// signature holds.
///
/// Tokens that verified are kept in a bounded cache keyed by the whole token text, so a
/// repeat costs one hash lookup; its `exp` and `nbf` are checked again on every hit. Only
/// tokens signed with the secret ever enter it.
public struct BuyerTokenVerifier: Sendable {

    /// An HMAC with the key already absorbed: each verification copies it (a value) and feeds
    /// only the signed bytes, instead of hashing the key again. The key of tokens without `kid`.
    private let keyedMAC: HMAC<SHA256>
    /// The keys by id, each with the base64url of our issuer's header naming it (matched
    /// without decoding).
    private let keyedByID: [String: HMAC<SHA256>]
    private let issuerHeaders: [(header: [UInt8], mac: HMAC<SHA256>)]
    /// The key without an id, if there is one: it also checks tokens whose `kid` names no key
    /// (a `kid` means nothing to a config with the single `user_token`).
    private let unnamedMAC: HMAC<SHA256>?
    private let cache: VerifiedTokenCache?

    /// Creates a verifier for tokens signed with `secret` (its UTF-8 bytes are the HMAC key).
    ///
    /// `cacheEntries` bounds the cache of verified tokens; 0 turns it off.
    public init(secret: String, cacheEntries: Int = EngineLimits.verifiedTokensMax) {
        self.init(keys: [TokenKey(kid: nil, secret: secret)], cacheEntries: cacheEntries)
    }

    /// Creates a verifier accepting tokens signed with any of `keys` (at least one).
    public init(keys: [TokenKey], cacheEntries: Int = EngineLimits.verifiedTokensMax) {
        precondition(cacheEntries >= 0, "cacheEntries must not be negative")
        precondition(!keys.isEmpty, "a verifier needs a key")
        func mac(_ key: TokenKey) -> HMAC<SHA256> { HMAC<SHA256>(key: SymmetricKey(data: Array(key.secret.utf8))) }
        self.keyedMAC = mac(keys.first { $0.kid == nil } ?? keys[0])
        self.unnamedMAC = keys.first { $0.kid == nil }.map(mac)
        var byID: [String: HMAC<SHA256>] = [:]
        var headers: [(header: [UInt8], mac: HMAC<SHA256>)] = []
        for key in keys {
            guard let kid = key.kid, byID[kid] == nil else { continue }
            byID[kid] = mac(key)
            headers.append((Array(BuyerTokenIssuer.header(kid: kid).utf8), mac(key)))
        }
        self.keyedByID = byID
        self.issuerHeaders = headers
        self.cache = cacheEntries > 0 ? VerifiedTokenCache(capacity: cacheEntries) : nil
    }

    /// The user id (`sub`) of a valid `token`, or why it is refused.
    public func verify(_ token: some StringProtocol, nowSeconds: Int64) -> Result<String, TokenRejection> {
        let byteCount = token.utf8.count
        guard byteCount > 0 else { return .failure(.missing) }
        guard byteCount <= EngineLimits.tokenBytesMax else { return .failure(.malformed) }
        // A native string's bytes in place (no copy of the token per request); else one copy.
        if let verified = token.utf8.withContiguousStorageIfAvailable({ verify(UnsafeRawBufferPointer($0), nowSeconds: nowSeconds) }) {
            return verified
        }
        var text = String(token)
        return text.withUTF8 { verify(UnsafeRawBufferPointer($0), nowSeconds: nowSeconds) }
    }

    /// `token`'s bytes (1...`tokenBytesMax` of them): from the cache, else verified and cached.
    private func verify(_ token: UnsafeRawBufferPointer, nowSeconds: Int64) -> Result<String, TokenRejection> {
        if let cache, let claims = cache.lookup(token) {
            return claims.check(nowSeconds: nowSeconds)
        }
        switch verifySignedClaims(token) {
        case .failure(let rejection):
            return .failure(rejection)
        case .success(let claims):
            cache?.store(token, claims)
            return claims.check(nowSeconds: nowSeconds)
        }
    }

    var cachedTokenCount: Int { cache?.count ?? 0 }

    /// The user id from an `Authorization` header value (`Bearer <token>`), or why it is refused.
    public func verify(authorization: String?, nowSeconds: Int64) -> Result<String, TokenRejection> {
        switch Self.bearerToken(fromAuthorization: authorization) {
        case .success(let token): return verify(token, nowSeconds: nowSeconds)
        case .failure(let rejection): return .failure(rejection)
        }
    }

    /// The token in an `Authorization` header value `Bearer <token>` (scheme case-insensitive).
    ///
    /// No header, or only whitespace, is `missing`; another scheme, no token after the
    /// scheme, or anything after the token is `malformed`.
    public static func bearerToken(fromAuthorization header: String?) -> Result<Substring, TokenRejection> {
        guard let header else { return .failure(.missing) }
        let value = Substring(header).trimmingOWS()
        guard !value.isEmpty else { return .failure(.missing) }
        let scheme = "bearer".utf8
        let utf8 = value.utf8
        guard utf8.count > scheme.count else { return .failure(.malformed) }
        let schemeEnd = utf8.index(utf8.startIndex, offsetBy: scheme.count)
        for (byte, expected) in zip(utf8[utf8.startIndex..<schemeEnd], scheme) {
            // ASCII case fold: setting 0x20 lowercases letters and leaves no letter matching a non-letter.
            guard byte | 0x20 == expected else { return .failure(.malformed) }
        }
        guard utf8[schemeEnd] == UInt8(ascii: " ") else { return .failure(.malformed) }
        let token = value[schemeEnd...].trimmingOWS()
        guard !token.isEmpty else { return .failure(.malformed) }
        guard !token.utf8.contains(where: { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }) else {
            return .failure(.malformed)
        }
        return .success(token)
    }

    /// Whether `subject` is a valid user id: `[A-Za-z0-9._-]{1,64}`.
    public static func isValidSubject(_ subject: some StringProtocol) -> Bool {
        isContractIdentifier(subject)
    }

    // MARK: Verification

    /// base64url of `{"alg":"HS256","typ":"JWT"}` and of `{"alg":"HS256"}`: the headers our
    /// issuer and most libraries write, accepted without decoding.
    private static let knownHeaders: [[UInt8]] = [
        Array("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9".utf8),
        Array("eyJhbGciOiJIUzI1NiJ9".utf8),
    ]

    /// Shape, header, signature and claim types; not the clock (the cache re-checks that).
    private func verifySignedClaims(_ token: UnsafeRawBufferPointer) -> Result<TokenClaims, TokenRejection> {
        guard let firstDot = token.firstIndex(of: UInt8(ascii: ".")) else { return .failure(.malformed) }
        let rest = token[(firstDot + 1)...]
        guard let secondDot = rest.firstIndex(of: UInt8(ascii: ".")) else { return .failure(.malformed) }
        guard !token[(secondDot + 1)...].contains(UInt8(ascii: ".")) else { return .failure(.malformed) }

        let header = UnsafeRawBufferPointer(rebasing: token[..<firstDot])
        var mac: HMAC<SHA256>
        if Self.knownHeaders.contains(where: { $0.elementsEqual(header) }) {
            mac = keyedMAC
        } else if let issued = issuerHeaders.first(where: { $0.header.elementsEqual(header) }) {
            mac = issued.mac
        } else {
            switch Self.checkHeader(header) {
            case .failure(let rejection): return .failure(rejection)
            case .success(nil): mac = keyedMAC
            case .success(let kid?):
                guard let keyed = keyedByID[kid] ?? unnamedMAC else { return .failure(.badSignature) }
                mac = keyed
            }
        }

        guard let signature = Base64URL.decode(UnsafeRawBufferPointer(rebasing: token[(secondDot + 1)...])) else {
            return .failure(.malformed)
        }
        mac.update(data: UnsafeRawBufferPointer(rebasing: token[..<secondDot]))
        // Compared in constant time (`MessageAuthenticationCode ==` a `DataProtocol`).
        guard signature.count == SHA256.byteCount, mac.finalize() == signature else { return .failure(.badSignature) }

        guard let payloadBytes = Base64URL.decode(UnsafeRawBufferPointer(rebasing: token[(firstDot + 1)..<secondDot])) else {
            return .failure(.malformed)
        }
        if let plain = Self.scanPlainClaims(payloadBytes) { return .success(plain) }
        return Self.parseClaimsTree(payloadBytes)
    }

    /// The claims through the full parser (the fallback of `scanPlainClaims`, and its reference in tests).
    static func parseClaimsTree(_ payloadBytes: [UInt8]) -> Result<TokenClaims, TokenRejection> {
        guard let payload = try? JSONParser.parse(payloadBytes), case .object(let claims) = payload else { return .failure(.malformed) }
        guard let expires = claims["exp"].flatMap(Self.numericDateCeiling) else { return .failure(.malformed) }
        var notBefore: Int64? = nil
        if let nbf = claims["nbf"] {
            guard let value = Self.numericDateCeiling(nbf) else { return .failure(.malformed) }
            notBefore = value
        }
        // A bad `sub` is reported after the clock checks; carry it as nil until then.
        var subject: String? = nil
        if let sub = claims["sub"]?.stringValue, Self.isValidSubject(sub) { subject = sub }
        return .success(TokenClaims(subject: subject, notBefore: notBefore, expires: expires))
    }

    /// The claims read in one pass when the payload is plain (`FlatJSONScanner`): `sub` a
    /// string, `exp` (required), `nbf` and `iat` integers, each at most once and nothing else,
    /// as our issuer and most others write them; nil for any other payload, which the full
    /// parser then reads (with the same meaning for what this accepts).
    static func scanPlainClaims(_ payload: [UInt8]) -> TokenClaims? {
        var subject: String??, expires: Int64?, notBefore: Int64?, issuedAt = false
        let plain = payload.withUnsafeBytes { bytes in
            FlatJSONScanner.scan(bytes) { key, value in
                switch value {
                case .string(let text) where FlatJSONScanner.isKey(key, "sub") && subject == nil:
                    let sub = String(decoding: text, as: UTF8.self)
                    subject = .some(isValidSubject(sub) ? sub : nil)
                case .int(let seconds) where FlatJSONScanner.isKey(key, "exp") && expires == nil:
                    expires = seconds
                case .int(let seconds) where FlatJSONScanner.isKey(key, "nbf") && notBefore == nil:
                    notBefore = seconds
                case .int where FlatJSONScanner.isKey(key, "iat") && !issuedAt:
                    issuedAt = true
                default:
                    return false
                }
                return true
            }
        }
        guard plain, let expires else { return nil }
        return TokenClaims(subject: subject ?? nil, notBefore: notBefore, expires: expires)
    }

    /// The header's `kid` (nil without one) when the header is acceptable; otherwise the rejection.
    private static func checkHeader(_ header: UnsafeRawBufferPointer) -> Result<String?, TokenRejection> {
        guard let bytes = Base64URL.decode(header), let value = try? JSONParser.parse(bytes),
            case .object(let fields) = value
        else { return .failure(.malformed) }
        guard fields["alg"] == .string("HS256") else { return .failure(.unsupportedAlgorithm) }
        // RFC 7515 4.1.11: extensions marked critical that we do not implement must be refused.
        guard fields["crit"] == nil else { return .failure(.malformed) }
        switch fields["kid"] {
        case nil: return .success(nil)
        case .string(let kid)?: return .success(kid)
        default: return .failure(.malformed)
        }
    }

    /// A NumericDate claim rounded up to whole seconds (clamped to Int64): for whole-second
    /// `now`, `now < exp` iff `now < ceil(exp)` and `nbf <= now` iff `ceil(nbf) <= now`.
    private static func numericDateCeiling(_ value: JSONValue) -> Int64? {
        switch value {
        case .int(let seconds):
            return seconds
        case .double(let seconds):
            let rounded = seconds.rounded(.up)
            if rounded >= 9.2e18 { return .max }
            if rounded <= -9.2e18 { return .min }
            return Int64(rounded)
        default:
            return nil
        }
    }
}

/// The claims of a token whose signature holds.
struct TokenClaims: Sendable, Equatable {
    /// `sub` when it is a valid user id; nil otherwise.
    let subject: String?
    /// `nbf`, rounded up to whole seconds.
    let notBefore: Int64?
    /// `exp`, rounded up to whole seconds.
    let expires: Int64

    /// The user id, if the token is valid at `nowSeconds`.
    func check(nowSeconds: Int64) -> Result<String, TokenRejection> {
        guard nowSeconds < expires else { return .failure(.expired) }
        if let notBefore, notBefore > nowSeconds { return .failure(.expired) }
        guard let subject else { return .failure(.badSubject) }
        return .success(subject)
    }
}

/// Tokens that verified, with their claims, so a buyer's later requests skip the HMAC.
///
/// A fixed table: `capacity` slots in 16 locked shards, each token in the one slot its
/// signature picks, a newcomer taking the slot over. Nothing grows, nothing is swept, and a
/// lookup neither allocates nor hashes: the slot comes from 8 bytes of the token's signature
/// text (an HMAC output, spread uniformly; only tokens that verified are stored, so nobody
/// without the secret can aim at a slot), and a hit is confirmed by comparing every byte of
/// the token with the one stored. Tokens with a bad `sub` are kept too: their answer is just as
/// fixed by their text as a good token's.
final class VerifiedTokenCache: Sendable {
    private static let shardCount = 16

    private struct Entry {
        var token: [UInt8]
        var claims: TokenClaims
    }

    private final class Shard: Sendable {
        let slots: Mutex<[Entry?]>
        init(slots: Int) { self.slots = Mutex([Entry?](repeating: nil, count: slots)) }
    }

    private let shards: [Shard]
    private let slotsPerShard: Int

    init(capacity: Int) {
        precondition(capacity > 0, "cache capacity must be positive")
        slotsPerShard = max(1, capacity / Self.shardCount)
        shards = (0..<Self.shardCount).map { _ in Shard(slots: max(1, capacity / Self.shardCount)) }
    }

    /// Tokens held.
    var count: Int {
        shards.reduce(0) { total, shard in total + shard.slots.withLock { $0.count { $0 != nil } } }
    }

    func lookup(_ token: UnsafeRawBufferPointer) -> TokenClaims? {
        let (shard, slot) = place(token)
        return shards[shard].slots.withLock { slots in
            guard let entry = slots[slot], entry.token.elementsEqual(token) else { return nil }
            return entry.claims
        }
    }

    func store(_ token: UnsafeRawBufferPointer, _ claims: TokenClaims) {
        let (shard, slot) = place(token)
        let entry = Entry(token: Array(token), claims: claims)
        shards[shard].slots.withLock { $0[slot] = entry }
    }

    /// The shard and slot of `token`: from the 8 bytes before its last (the signature's tail).
    private func place(_ token: UnsafeRawBufferPointer) -> (shard: Int, slot: Int) {
        var bits: UInt64 = 0
        let end = token.count - 1
        for offset in max(0, end - 8)..<max(0, end) { bits = bits << 8 | UInt64(token[offset]) }
        // Base64 text carries 6 random bits a byte: mix them over the word before slicing it.
        bits = (bits ^ (bits >> 29)) &* 0xBF58_476D_1CE4_E5B9
        bits ^= bits >> 32
        return (Int(bits & 15), Int((bits >> 4) % UInt64(slotsPerShard)))
    }
}

/// Mints buyer tokens (for `flashsaled token` and tests): `{"alg":"HS256","typ":"JWT"}`
/// with claims `sub`, `iat` and `exp`, readable by any standard JWT library.
public struct BuyerTokenIssuer: Sendable {
    private let key: SymmetricKey
    private let header: String

    /// Creates an issuer signing with `secret` (its UTF-8 bytes are the HMAC key).
    public init(secret: String) {
        self.init(key: TokenKey(kid: nil, secret: secret))
    }

    /// Creates an issuer signing with `key`, naming its `kid` in the header when it has one.
    public init(key: TokenKey) {
        self.key = SymmetricKey(data: Array(key.secret.utf8))
        self.header = key.kid.map(Self.header(kid:)) ?? "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    }

    /// base64url of `{"alg":"HS256","typ":"JWT","kid":"<kid>"}`.
    static func header(kid: String) -> String {
        Base64URL.encode(JSONWriter.object { json in
            json.field("alg", "HS256")
            json.field("typ", "JWT")
            json.field("kid", kid)
        })
    }

    /// A token for `user`, issued at `nowSeconds` and expiring `ttlSeconds` later.
    ///
    /// `user` must pass `BuyerTokenVerifier.isValidSubject` (callers check user input first).
    public func mint(user: String, nowSeconds: Int64, ttlSeconds: Int64) -> String {
        precondition(BuyerTokenVerifier.isValidSubject(user), "user id must match [A-Za-z0-9._-]{1,64}")
        let (sum, overflow) = nowSeconds.addingReportingOverflow(ttlSeconds)
        let expires = overflow ? (ttlSeconds > 0 ? Int64.max : Int64.min) : sum
        let payload = JSONWriter.object { json in
            json.field("sub", user)
            json.field("iat", nowSeconds)
            json.field("exp", expires)
        }
        let signingInput = header + "." + Base64URL.encode(payload)
        let mac = HMAC<SHA256>.authenticationCode(for: Array(signingInput.utf8), using: key)
        return signingInput + "." + Base64URL.encode(Array(mac))
    }
}

extension Substring {
    /// Without leading and trailing spaces and tabs (HTTP's optional whitespace).
    fileprivate func trimmingOWS() -> Substring {
        let utf8 = self.utf8
        let isOWS = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        var start = utf8.startIndex
        var end = utf8.endIndex
        while start < end, isOWS(utf8[start]) { start = utf8.index(after: start) }
        while start < end {
            let before = utf8.index(before: end)
            guard isOWS(utf8[before]) else { break }
            end = before
        }
        return self[start..<end]
    }
}
