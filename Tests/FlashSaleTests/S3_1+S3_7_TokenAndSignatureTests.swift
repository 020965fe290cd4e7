import Crypto
import Foundation
import FlashSaleTestKit
import Testing

@testable import FlashSale
@testable import FlashSaleHTTP

// MARK: Helpers

private let tokenSecret = "flashsale-test-secret"
private let tokenNow: Int64 = 1_700_000_000

/// A JWT with exactly these header and payload texts, signed HS256 with `secret`.
private func signedToken(header: String, payload: String, secret: String = tokenSecret) -> String {
    let signingInput = Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(payload.utf8))
    return signingInput + "." + signature(of: signingInput, secret: secret)
}

private func signature(of signingInput: String, secret: String = tokenSecret) -> String {
    let mac = HMAC<SHA256>.authenticationCode(
        for: Array(signingInput.utf8), using: SymmetricKey(data: Array(secret.utf8)))
    return Base64URL.encode(Array(mac))
}

private let hs256Header = #"{"alg":"HS256","typ":"JWT"}"#

private func claims(_ body: String) -> String {
    signedToken(header: hs256Header, payload: body)
}


// MARK: Base64url

@Suite struct Base64URLTests {
    @Test func encodesRFC4648Vectors() {
        let vectors: [(String, String)] = [
            ("", ""), ("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"), ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"), ("foobar", "Zm9vYmFy"),
        ]
        for (plain, encoded) in vectors {
            #expect(Base64URL.encode(Array(plain.utf8)) == encoded)
            #expect(Base64URL.decode(Array(encoded.utf8)) == Array(plain.utf8))
        }
        // The two characters that differ from standard base64.
        #expect(Base64URL.encode([0xFB, 0xFF]) == "-_8")
        #expect(Base64URL.decode(Array("-_8".utf8)) == [0xFB, 0xFF])
    }

    @Test func roundTripsRandomBytesAgainstFoundation() {
        var rng = SplitMix64(state: 0xB64)
        for length in 0..<200 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let foundation = Data(bytes).base64EncodedString()
                .replacingOccurrences(of: "+", with: "-")
                .replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
            let encoded = Base64URL.encode(bytes)
            #expect(encoded == foundation, "length \(length)")
            #expect(Base64URL.decode(Array(encoded.utf8)) == bytes, "length \(length)")
        }
    }

    @Test(arguments: [
        "Zg==",  // padding
        "Zg=",
        "Z",  // a length no encoding has
        "Zm9vY",
        "Zh",  // non-zero unused bits: "Zg" is the one spelling of "f"
        "Zm9",  // "fo" is "Zm8"
        "Zm+v",  // standard alphabet
        "Zm/v",
        "Zm9v\n",
        "Zm 9v",
    ])
    func rejectsNonCanonicalText(_ text: String) {
        #expect(Base64URL.decode(Array(text.utf8)) == nil)
    }
}

// MARK: Buyer tokens

struct BuyerTokenRow: Sendable, CustomTestStringConvertible {
    let name: String
    let token: String
    var now: Int64 = tokenNow
    let expected: Result<String, TokenRejection>
    var testDescription: String { name }
}

private let validToken = BuyerTokenIssuer(secret: tokenSecret).mint(user: "u-42", nowSeconds: tokenNow, ttlSeconds: 3600)

/// Computed with Python's stdlib (`hmac`, `hashlib`, `base64`) for user "u-42", iat
/// 1700000000, exp 1700003600, secret "flashsale-test-secret".
private let pythonVector =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1LTQyIiwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjE3MDAwMDM2MDB9.-pYPDZdKTps601pIj1c3t4cLsUHqTCuVFh9riRefHx4"
/// Minted by PyJWT 2.15: `jwt.encode({"sub":"alice_01","exp":2000000000,"nbf":1600000000,
/// "iat":1600000000}, "flashsale-test-secret", algorithm="HS256")`.
private let pyjwtVector =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZV8wMSIsImV4cCI6MjAwMDAwMDAwMCwibmJmIjoxNjAwMDAwMDAwLCJpYXQiOjE2MDAwMDAwMDB9.nj7M5qrSk4xPSqYXYqxgw3IUMXFU6x84akUNyeBB60U"
/// PyJWT with `headers={"kid":"k1"}` and a fractional `exp` of 2000000000.5: a header the
/// verifier has to parse.
private let pyjwtKidVector =
    "eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0.eyJzdWIiOiJib2IiLCJleHAiOjIwMDAwMDAwMDAuNX0.iZTuz8y98Xm2vhm9mx-3tV3E6D6Qf_mg8dacRSl3w2A"

private func segments(_ token: String) -> [String] { token.split(separator: ".", omittingEmptySubsequences: false).map(String.init) }

private let tokenRows: [BuyerTokenRow] = {
    let parts = segments(validToken)
    let otherUser = BuyerTokenIssuer(secret: tokenSecret).mint(user: "mallory", nowSeconds: tokenNow, ttlSeconds: 3600)
    let exp = tokenNow + 60
    let longSubject = String(repeating: "a", count: 64)
    let bigPadding = String(repeating: "x", count: 2900)
    return [
        BuyerTokenRow(name: "minted token", token: validToken, expected: .success("u-42")),
        BuyerTokenRow(name: "python stdlib vector", token: pythonVector, expected: .success("u-42")),
        BuyerTokenRow(name: "pyjwt vector", token: pyjwtVector, expected: .success("alice_01")),
        BuyerTokenRow(name: "pyjwt with kid and fractional exp", token: pyjwtKidVector, expected: .success("bob")),
        BuyerTokenRow(name: "pyjwt fractional exp passed", token: pyjwtKidVector, now: 2_000_000_001, expected: .failure(.expired)),
        BuyerTokenRow(name: "pyjwt nbf ahead", token: pyjwtVector, now: 1_599_999_999, expected: .failure(.expired)),
        BuyerTokenRow(name: "header without typ", token: signedToken(header: #"{"alg":"HS256"}"#, payload: #"{"sub":"u1","exp":\#(exp)}"#), expected: .success("u1")),
        BuyerTokenRow(name: "header with spaces", token: signedToken(header: #"{ "typ" : "JWT", "alg" : "HS256" }"#, payload: #"{"sub":"u1","exp":\#(exp)}"#), expected: .success("u1")),
        BuyerTokenRow(name: "64-char subject", token: claims(#"{"sub":"\#(longSubject)","exp":\#(exp)}"#), expected: .success(longSubject)),
        BuyerTokenRow(name: "nbf equal to now", token: claims(#"{"sub":"u1","exp":\#(exp),"nbf":\#(tokenNow)}"#), expected: .success("u1")),
        BuyerTokenRow(name: "exp one second ahead", token: claims(#"{"sub":"u1","exp":\#(tokenNow + 1)}"#), expected: .success("u1")),
        BuyerTokenRow(name: "unknown claims ignored", token: claims(#"{"sub":"u1","exp":\#(exp),"roles":["x"],"iss":"y"}"#), expected: .success("u1")),
        BuyerTokenRow(name: "token near the size limit", token: claims(#"{"sub":"u1","exp":\#(exp),"pad":"\#(bigPadding)"}"#), expected: .success("u1")),

        BuyerTokenRow(name: "empty", token: "", expected: .failure(.missing)),
        BuyerTokenRow(name: "alg none unsigned", token: Base64URL.encode(Array(#"{"alg":"none","typ":"JWT"}"#.utf8)) + "." + parts[1] + ".", expected: .failure(.unsupportedAlgorithm)),
        BuyerTokenRow(name: "alg none signed", token: signedToken(header: #"{"alg":"none"}"#, payload: #"{"sub":"u1","exp":\#(exp)}"#), expected: .failure(.unsupportedAlgorithm)),
        BuyerTokenRow(name: "alg HS512", token: signedToken(header: #"{"alg":"HS512","typ":"JWT"}"#, payload: #"{"sub":"u1","exp":\#(exp)}"#), expected: .failure(.unsupportedAlgorithm)),
        BuyerTokenRow(name: "alg lowercase", token: signedToken(header: #"{"alg":"hs256"}"#, payload: #"{"sub":"u1","exp":\#(exp)}"#), expected: .failure(.unsupportedAlgorithm)),
        BuyerTokenRow(name: "alg not a string", token: signedToken(header: #"{"alg":256}"#, payload: #"{"sub":"u1","exp":\#(exp)}"#), expected: .failure(.unsupportedAlgorithm)),
        BuyerTokenRow(name: "header missing alg", token: signedToken(header: #"{"typ":"JWT"}"#, payload: #"{"sub":"u1","exp":\#(exp)}"#), expected: .failure(.unsupportedAlgorithm)),
        BuyerTokenRow(name: "header with crit", token: signedToken(header: #"{"alg":"HS256","crit":["b64"],"b64":false}"#, payload: #"{"sub":"u1","exp":\#(exp)}"#), expected: .failure(.malformed)),
        BuyerTokenRow(name: "header not JSON", token: signedToken(header: "alg=HS256", payload: #"{"sub":"u1","exp":\#(exp)}"#), expected: .failure(.malformed)),
        BuyerTokenRow(name: "header a JSON array", token: signedToken(header: #"["HS256"]"#, payload: #"{"sub":"u1","exp":\#(exp)}"#), expected: .failure(.malformed)),
        BuyerTokenRow(name: "header with duplicate alg", token: signedToken(header: #"{"alg":"none","alg":"HS256"}"#, payload: #"{"sub":"u1","exp":\#(exp)}"#), expected: .failure(.malformed)),
        BuyerTokenRow(name: "tampered payload", token: parts[0] + "." + segments(otherUser)[1] + "." + parts[2], expected: .failure(.badSignature)),
        BuyerTokenRow(name: "wrong secret", token: signedToken(header: hs256Header, payload: #"{"sub":"u1","exp":\#(exp)}"#, secret: "another-secret"), expected: .failure(.badSignature)),
        BuyerTokenRow(name: "signature cut short", token: parts[0] + "." + parts[1] + "." + String(parts[2].dropLast(3)), expected: .failure(.badSignature)),
        BuyerTokenRow(name: "empty signature", token: parts[0] + "." + parts[1] + ".", expected: .failure(.badSignature)),
        BuyerTokenRow(name: "signature not base64url", token: parts[0] + "." + parts[1] + "." + parts[2].replacingOccurrences(of: parts[2].prefix(1), with: "+"), expected: .failure(.malformed)),
        BuyerTokenRow(name: "signature with padding", token: validToken + "=", expected: .failure(.malformed)),
        BuyerTokenRow(name: "expired: exp equal to now", token: claims(#"{"sub":"u1","exp":\#(tokenNow)}"#), expected: .failure(.expired)),
        BuyerTokenRow(name: "expired: exp in the past", token: claims(#"{"sub":"u1","exp":\#(tokenNow - 1000)}"#), expected: .failure(.expired)),
        BuyerTokenRow(name: "minted token after its ttl", token: validToken, now: tokenNow + 3600, expected: .failure(.expired)),
        BuyerTokenRow(name: "nbf one second ahead", token: claims(#"{"sub":"u1","exp":\#(exp),"nbf":\#(tokenNow + 1)}"#), expected: .failure(.expired)),
        BuyerTokenRow(name: "missing exp", token: claims(#"{"sub":"u1"}"#), expected: .failure(.malformed)),
        BuyerTokenRow(name: "exp as string", token: claims(#"{"sub":"u1","exp":"\#(exp)"}"#), expected: .failure(.malformed)),
        BuyerTokenRow(name: "exp null", token: claims(#"{"sub":"u1","exp":null}"#), expected: .failure(.malformed)),
        BuyerTokenRow(name: "nbf as string", token: claims(#"{"sub":"u1","exp":\#(exp),"nbf":"0"}"#), expected: .failure(.malformed)),
        BuyerTokenRow(name: "payload an array", token: claims(#"[{"sub":"u1","exp":\#(exp)}]"#), expected: .failure(.malformed)),
        BuyerTokenRow(name: "payload not JSON", token: claims("sub=u1"), expected: .failure(.malformed)),
        BuyerTokenRow(name: "payload with trailing comma", token: claims(#"{"sub":"u1","exp":\#(exp),}"#), expected: .failure(.malformed)),
        BuyerTokenRow(name: "payload with duplicate sub", token: claims(#"{"sub":"u1","sub":"u2","exp":\#(exp)}"#), expected: .failure(.malformed)),
        BuyerTokenRow(name: "payload segment not base64url", token: { let input = parts[0] + ".eyJ+"; return input + "." + signature(of: input) }(), expected: .failure(.malformed)),
        BuyerTokenRow(name: "missing sub", token: claims(#"{"exp":\#(exp)}"#), expected: .failure(.badSubject)),
        BuyerTokenRow(name: "sub with a space", token: claims(#"{"sub":"u 1","exp":\#(exp)}"#), expected: .failure(.badSubject)),
        BuyerTokenRow(name: "sub of 65 chars", token: claims(#"{"sub":"\#(longSubject)a","exp":\#(exp)}"#), expected: .failure(.badSubject)),
        BuyerTokenRow(name: "sub empty", token: claims(#"{"sub":"","exp":\#(exp)}"#), expected: .failure(.badSubject)),
        BuyerTokenRow(name: "sub a number", token: claims(#"{"sub":42,"exp":\#(exp)}"#), expected: .failure(.badSubject)),
        BuyerTokenRow(name: "sub with a slash", token: claims(#"{"sub":"..\/admin","exp":\#(exp)}"#), expected: .failure(.badSubject)),
        BuyerTokenRow(name: "sub non-ASCII", token: claims(#"{"sub":"\u00e9","exp":\#(exp)}"#), expected: .failure(.badSubject)),
        BuyerTokenRow(name: "expired beats bad sub", token: claims(#"{"sub":"u 1","exp":1}"#), expected: .failure(.expired)),
        BuyerTokenRow(name: "garbage segments", token: "abc.def.ghi", expected: .failure(.malformed)),
        BuyerTokenRow(name: "only dots", token: "..", expected: .failure(.malformed)),
        BuyerTokenRow(name: "two segments", token: parts[0] + "." + parts[1], expected: .failure(.malformed)),
        BuyerTokenRow(name: "one segment", token: parts[0], expected: .failure(.malformed)),
        BuyerTokenRow(name: "four segments", token: validToken + "." + parts[2], expected: .failure(.malformed)),
        BuyerTokenRow(name: "huge token", token: validToken + String(repeating: "A", count: 5000), expected: .failure(.malformed)),
        BuyerTokenRow(name: "validly signed but over 4096 bytes", token: claims(#"{"sub":"u1","exp":\#(exp),"pad":"\#(String(repeating: "x", count: 3100))"}"#), expected: .failure(.malformed)),
    ]
}()

@Suite struct BuyerTokenTests {
    @Test(arguments: tokenRows)
    func verifiesWithoutCache(_ row: BuyerTokenRow) {
        let verifier = BuyerTokenVerifier(secret: tokenSecret, cacheEntries: 0)
        #expect(verifier.verify(row.token, nowSeconds: row.now) == row.expected)
    }

    /// The cache must never change an answer: each row twice, the second from the cache.
    @Test(arguments: tokenRows)
    func cacheGivesTheSameAnswers(_ row: BuyerTokenRow) {
        let verifier = BuyerTokenVerifier(secret: tokenSecret)
        #expect(verifier.verify(row.token, nowSeconds: row.now) == row.expected)
        #expect(verifier.verify(row.token, nowSeconds: row.now) == row.expected)
        #expect(verifier.verify(Substring(row.token), nowSeconds: row.now) == row.expected)
    }

    @Test func sizeLimitRowsStraddleTheLimit() {
        let near = tokenRows.first { $0.name == "token near the size limit" }!.token.utf8.count
        let over = tokenRows.first { $0.name == "validly signed but over 4096 bytes" }!.token.utf8.count
        #expect(near <= EngineLimits.tokenBytesMax)
        #expect(over > EngineLimits.tokenBytesMax)
    }

    @Test func issuerMatchesPythonStdlibVector() {
        let token = BuyerTokenIssuer(secret: tokenSecret).mint(user: "u-42", nowSeconds: tokenNow, ttlSeconds: 3600)
        #expect(token == pythonVector)
    }

    @Test func knownHeaderShortcutsMatchTheirJSON() {
        #expect(Base64URL.encode(Array(hs256Header.utf8)) == "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9")
        #expect(Base64URL.encode(Array(#"{"alg":"HS256"}"#.utf8)) == "eyJhbGciOiJIUzI1NiJ9")
    }

    @Test func cachedTokenExpiresOnTime() {
        let verifier = BuyerTokenVerifier(secret: tokenSecret)
        let token = BuyerTokenIssuer(secret: tokenSecret).mint(user: "u7", nowSeconds: tokenNow, ttlSeconds: 10)
        #expect(verifier.verify(token, nowSeconds: tokenNow) == .success("u7"))
        #expect(verifier.verify(token, nowSeconds: tokenNow + 9) == .success("u7"))
        #expect(verifier.verify(token, nowSeconds: tokenNow + 10) == .failure(.expired))
        #expect(verifier.verify(token, nowSeconds: tokenNow + 11) == .failure(.expired))
    }

    @Test func verifierWithAnotherSecretRejectsCachedElsewhere() {
        let first = BuyerTokenVerifier(secret: tokenSecret)
        let second = BuyerTokenVerifier(secret: "rotated-secret")
        #expect(first.verify(validToken, nowSeconds: tokenNow) == .success("u-42"))
        #expect(second.verify(validToken, nowSeconds: tokenNow) == .failure(.badSignature))
    }

    @Test func tokenCacheStaysWithinCapacity() {
        let cache = VerifiedTokenCache(capacity: 64)
        let claims = TokenClaims(subject: "u", notBefore: nil, expires: .max)
        for index in 0..<10_000 {
            var token = "token-\(index)-signature\(index % 97)"
            token.withUTF8 { cache.store(UnsafeRawBufferPointer($0), claims) }
            #expect(cache.count <= 64)
        }
        #expect(cache.count > 0)
    }

    /// The slot comes from the signature's tail alone: a token that shares the tail of a cached
    /// one (as a forgery reusing a real signature would) lands on its slot but is no hit.
    @Test func tokenCacheHitsOnlyTheSameBytes() {
        let cache = VerifiedTokenCache(capacity: 64)
        let claims = TokenClaims(subject: "u", notBefore: nil, expires: .max)
        var stored = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.SAME-SIGNATURE-TAIL"
        var forged = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ2In0.SAME-SIGNATURE-TAIL"
        stored.withUTF8 { cache.store(UnsafeRawBufferPointer($0), claims) }
        #expect(stored.withUTF8 { cache.lookup(UnsafeRawBufferPointer($0)) } == claims)
        #expect(forged.withUTF8 { cache.lookup(UnsafeRawBufferPointer($0)) } == nil)
    }

    @Test func concurrentVerificationAgrees() async {
        let verifier = BuyerTokenVerifier(secret: tokenSecret, cacheEntries: 256)
        let issuer = BuyerTokenIssuer(secret: tokenSecret)
        let tokens = (0..<500).map { issuer.mint(user: "user\($0)", nowSeconds: tokenNow, ttlSeconds: 60) }
        let mismatches = await withTaskGroup(of: Int.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    var bad = 0
                    for round in 0..<3 {
                        for (index, token) in tokens.enumerated() where (index + worker + round) % 2 == 0 {
                            if verifier.verify(token, nowSeconds: tokenNow) != .success("user\(index)") { bad += 1 }
                        }
                    }
                    return bad
                }
            }
            return await group.reduce(0, +)
        }
        #expect(mismatches == 0)
    }

    @Test(arguments: [
        ("u1", true), ("A.b_c-9", true), (String(repeating: "z", count: 64), true),
        ("", false), (String(repeating: "z", count: 65), false), ("u 1", false), ("u/1", false),
        ("u@1", false), ("é", false), ("u\n", false),
    ])
    func subjectPattern(_ subject: String, _ valid: Bool) {
        #expect(BuyerTokenVerifier.isValidSubject(subject) == valid)
    }

    @Test(arguments: [
        (nil, Result<Substring, TokenRejection>.failure(.missing)),
        ("", .failure(.missing)),
        ("  \t ", .failure(.missing)),
        ("Bearer abc.def.ghi", .success("abc.def.ghi")),
        ("bearer abc", .success("abc")),
        ("BEARER   abc  ", .success("abc")),
        ("  BeArEr abc", .success("abc")),
        ("Basic dXNlcjpwYXNz", .failure(.malformed)),
        ("Bearer", .failure(.malformed)),
        ("Bearer   ", .failure(.malformed)),
        ("Bearerabc", .failure(.malformed)),
        ("Bearer\tabc", .failure(.malformed)),
        ("Bearer a b", .failure(.malformed)),
        ("Bear abc", .failure(.malformed)),
        ("abc.def.ghi", .failure(.malformed)),
    ] as [(String?, Result<Substring, TokenRejection>)])
    func bearerHeaderParsing(_ header: String?, _ expected: Result<Substring, TokenRejection>) {
        #expect(BuyerTokenVerifier.bearerToken(fromAuthorization: header) == expected)
    }

    @Test func verifiesFromAuthorizationHeader() {
        let verifier = BuyerTokenVerifier(secret: tokenSecret)
        #expect(verifier.verify(authorization: "Bearer " + validToken, nowSeconds: tokenNow) == .success("u-42"))
        #expect(verifier.verify(authorization: "bearer " + validToken, nowSeconds: tokenNow) == .success("u-42"))
        #expect(verifier.verify(authorization: nil, nowSeconds: tokenNow) == .failure(.missing))
        #expect(verifier.verify(authorization: "Token " + validToken, nowSeconds: tokenNow) == .failure(.malformed))
        #expect(verifier.verify(authorization: "Bearer " + validToken, nowSeconds: tokenNow + 3600) == .failure(.expired))
    }
}

// MARK: Payment signatures

@Suite struct PaymentSignatureTests {
    static let secret = "pay-secret"
    static let timestamp = "1700000000"
    static let nonce = "n-1"
    static let body = Array(#"{"order":"o1","transaction":"t1","amount":1999}"#.utf8)
    /// `hmac.new(b"pay-secret", b"1700000000\nn-1\n" + body, hashlib.sha256).hexdigest()` in Python.
    static let pythonHex = "6f294ba82164fa71c8592f50440a5a5517bde3d9976c673981df28ac99c6d63b"

    let signer = PaymentSignature(secret: PaymentSignatureTests.secret)

    @Test func signMatchesPythonVector() {
        #expect(signer.sign(timestamp: Self.timestamp, nonce: Self.nonce, body: Self.body) == Self.pythonHex)
    }

    @Test func acceptsPythonVectorFromAnyBodyCollection() {
        #expect(signer.isValid(timestamp: Self.timestamp, nonce: Self.nonce, body: Self.body, signatureHex: Self.pythonHex))
        #expect(signer.isValid(timestamp: Self.timestamp, nonce: Self.nonce, body: Self.body[...], signatureHex: Self.pythonHex))
        #expect(signer.isValid(timestamp: Substring(Self.timestamp), nonce: Self.nonce, body: Self.body.lazy.map { $0 }, signatureHex: Self.pythonHex))
        Self.body.withUnsafeBytes { raw in
            #expect(signer.isValid(timestamp: Self.timestamp, nonce: Self.nonce, body: raw, signatureHex: Self.pythonHex))
        }
    }

    struct Row: Sendable, CustomTestStringConvertible {
        let name: String
        var timestamp = PaymentSignatureTests.timestamp
        var nonce = PaymentSignatureTests.nonce
        var body = PaymentSignatureTests.body
        var signatureHex = PaymentSignatureTests.pythonHex
        var testDescription: String { name }
    }

    static let invalidRows: [Row] = {
        var flipped = body
        flipped[10] ^= 0x01
        return [
            Row(name: "flipped byte in body", body: flipped),
            Row(name: "extra byte in body", body: body + [0x20]),
            Row(name: "empty body", body: []),
            Row(name: "wrong nonce", nonce: "n-2"),
            Row(name: "wrong timestamp", timestamp: "1700000001"),
            Row(name: "nonce and timestamp swapped", timestamp: nonce, nonce: timestamp),
            Row(name: "uppercase hex", signatureHex: pythonHex.uppercased()),
            Row(name: "one uppercase digit", signatureHex: "6F" + pythonHex.dropFirst(2)),
            Row(name: "truncated by one digit", signatureHex: String(pythonHex.dropLast())),
            Row(name: "truncated by one byte", signatureHex: String(pythonHex.dropLast(2))),
            Row(name: "extended by one byte", signatureHex: pythonHex + "00"),
            Row(name: "empty signature", signatureHex: ""),
            Row(name: "non-hex digit", signatureHex: "g" + pythonHex.dropFirst()),
            Row(name: "sha256= prefix", signatureHex: "sha256=" + pythonHex),
            Row(name: "surrounding space", signatureHex: " " + pythonHex),
            Row(name: "last byte changed", signatureHex: pythonHex.dropLast(2) + "00"),
        ]
    }()

    @Test(arguments: invalidRows)
    func rejects(_ row: Row) {
        #expect(!signer.isValid(timestamp: row.timestamp, nonce: row.nonce, body: row.body, signatureHex: row.signatureHex))
    }

    @Test func rejectsSignatureMadeWithAnotherSecret() {
        let other = PaymentSignature(secret: "not-the-secret").sign(timestamp: Self.timestamp, nonce: Self.nonce, body: Self.body)
        #expect(!signer.isValid(timestamp: Self.timestamp, nonce: Self.nonce, body: Self.body, signatureHex: other))
    }

    @Test func signAndCheckRoundTripOnRandomBodies() {
        var rng = SplitMix64(state: 0x9A7)
        for length in [0, 1, 63, 64, 65, 1000, 16384] {
            let body = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let hex = signer.sign(timestamp: "1", nonce: "abc", body: body)
            #expect(hex.utf8.count == 64)
            #expect(signer.isValid(timestamp: "1", nonce: "abc", body: body, signatureHex: hex))
        }
    }

    @Test(arguments: [
        ("1700000000", Int64(1_700_000_000) as Int64?), ("0", 0), ("999999999999999999", 999_999_999_999_999_999),
        ("", nil), ("-1", nil), ("+1", nil), ("1.5", nil), (" 1", nil), ("1e9", nil),
        ("9999999999999999999", nil),
    ] as [(String, Int64?)])
    func timestampParsing(_ text: String, _ expected: Int64?) {
        #expect(PaymentSignature.timestampSeconds(text) == expected)
    }

    @Test(arguments: [
        (Int64(1000), Int64(1000), true), (700, 1000, true), (1300, 1000, true),
        (699, 1000, false), (1301, 1000, false), (0, .max, false), (.max, .min, false),
    ] as [(Int64, Int64, Bool)])
    func freshness(_ timestamp: Int64, _ now: Int64, _ fresh: Bool) {
        #expect(PaymentSignature.isFresh(timestampSeconds: timestamp, nowSeconds: now) == fresh)
    }

    @Test(arguments: [
        ("n-1", true), ("!~", true), (String(repeating: "n", count: 64), true),
        ("", false), (String(repeating: "n", count: 65), false), ("a b", false), ("a\u{7F}", false),
        ("é", false), ("a\n", false),
    ])
    func noncePattern(_ nonce: String, _ valid: Bool) {
        #expect(PaymentSignature.isValidNonce(nonce) == valid)
    }
}

// MARK: Nonce cache

@Suite struct NonceCacheTests {
    @Test func replayWithinWindowIsRejected() {
        let cache = NonceCache(windowSeconds: 300, capacity: 100)
        #expect(cache.insertIfAbsent("n1", nowSeconds: 1000))
        #expect(!cache.insertIfAbsent("n1", nowSeconds: 1000))
        #expect(!cache.insertIfAbsent("n1", nowSeconds: 1299))
        #expect(cache.insertIfAbsent("n2", nowSeconds: 1299))
    }

    @Test func nonceIsAcceptedAgainAfterWindow() {
        let cache = NonceCache(windowSeconds: 300, capacity: 100)
        #expect(cache.insertIfAbsent("n1", nowSeconds: 1000))
        #expect(cache.insertIfAbsent("n1", nowSeconds: 1300))
        // The window restarts from the second acceptance.
        #expect(!cache.insertIfAbsent("n1", nowSeconds: 1599))
        #expect(cache.insertIfAbsent("n1", nowSeconds: 1600))
    }

    @Test func clockSteppingBackStillRejectsReplay() {
        let cache = NonceCache(windowSeconds: 300, capacity: 100)
        #expect(cache.insertIfAbsent("n1", nowSeconds: 1000))
        #expect(!cache.insertIfAbsent("n1", nowSeconds: 500))
    }

    /// After the clock steps back, an entry queued behind a newer one still expires on time,
    /// and its stale queue entry does not evict the nonce's later insertion.
    @Test func entryQueuedBehindNewerOneExpiresOnTime() {
        let cache = NonceCache(windowSeconds: 300, capacity: 2)
        #expect(cache.insertIfAbsent("a", nowSeconds: 1000))
        #expect(cache.insertIfAbsent("b", nowSeconds: 700))
        #expect(!cache.insertIfAbsent("b", nowSeconds: 999))
        #expect(cache.insertIfAbsent("b", nowSeconds: 1000))
        // Queue: a@1000, b@700 (stale), b@1000; capacity 2 pops a.
        #expect(cache.count == 1)
        // Trimming the expired, stale b@700 must leave b@1000 in place.
        #expect(!cache.insertIfAbsent("b", nowSeconds: 1001))
        #expect(cache.insertIfAbsent("a", nowSeconds: 1001), "evicted past capacity")
    }

    @Test func expiredEntriesAreDropped() {
        let cache = NonceCache(windowSeconds: 300, capacity: 10_000)
        for index in 0..<5000 {
            #expect(cache.insertIfAbsent("old-\(index)", nowSeconds: 0))
        }
        #expect(cache.count == 5000)
        // Each shard drops its expired entries on its next insert.
        for index in 0..<2000 {
            #expect(cache.insertIfAbsent("new-\(index)", nowSeconds: 300))
        }
        #expect(cache.count == 2000)
    }

    @Test func smallCacheEvictsOldestPastCapacity() {
        let cache = NonceCache(windowSeconds: 300, capacity: 3)
        for nonce in ["a", "b", "c", "d"] {
            #expect(cache.insertIfAbsent(nonce, nowSeconds: 10))
        }
        #expect(cache.count == 3)
        #expect(!cache.insertIfAbsent("d", nowSeconds: 10))
        #expect(!cache.insertIfAbsent("b", nowSeconds: 10))
        #expect(cache.insertIfAbsent("a", nowSeconds: 10), "evicted, so no longer detected")
    }

    @Test func capacityHoldsUnder100000Inserts() {
        let capacity = 5000
        let cache = NonceCache(windowSeconds: 300, capacity: capacity)
        for index in 0..<100_000 {
            #expect(cache.insertIfAbsent("nonce-\(index)", nowSeconds: 1000 + Int64(index / 1000)))
            if index % 1000 == 999 {
                #expect(cache.count <= capacity)
            }
        }
        #expect(cache.count <= capacity)
        #expect(cache.count >= capacity - NonceCache.shardCount)
        // The most recent nonces are still caught.
        for index in 99_900..<100_000 {
            #expect(!cache.insertIfAbsent("nonce-\(index)", nowSeconds: 1100))
        }
    }

    /// Against an exact model: with room to spare the cache must answer exactly as a
    /// dictionary of last-accepted times does.
    @Test func matchesReferenceModel() {
        let seed: UInt64 = 0x5EED_0001
        var rng = SplitMix64(state: seed)
        let cache = NonceCache(windowSeconds: 30, capacity: 100_000)
        var model: [String: Int64] = [:]
        var now: Int64 = 0
        for step in 0..<50_000 {
            if Int.random(in: 0..<10, using: &rng) == 0 { now += Int64.random(in: 0...5, using: &rng) }
            let nonce = "n\(Int.random(in: 0..<400, using: &rng))"
            let expected: Bool
            if let seen = model[nonce], now - seen < 30 {
                expected = false
            } else {
                expected = true
                model[nonce] = now
            }
            let actual = cache.insertIfAbsent(nonce, nowSeconds: now)
            #expect(actual == expected, "seed \(seed) step \(step)")
            if actual != expected { return }
        }
    }

    @Test func concurrentInsertsAcceptEachNonceOnce() async {
        let cache = NonceCache(windowSeconds: 300, capacity: 100_000)
        let accepted = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    (0..<2000).reduce(0) { total, index in
                        total + (cache.insertIfAbsent("n\(index)", nowSeconds: 100) ? 1 : 0)
                    }
                }
            }
            return await group.reduce(0, +)
        }
        #expect(accepted == 2000)
        #expect(cache.count == 2000)
    }
}
