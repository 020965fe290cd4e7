// Token verification on the request path: the buyer JWT (HS256) every order carries, and the
// payment notification's HMAC-SHA256 signature. 1 000 distinct tokens and notifications,
// minted and signed before the measurement.
import Benchmark
import FlashSale

func tokenBenchmarks() {
    let count = 1_000
    let nowSeconds: Int64 = 1_700_000_000
    let secret = "bench-user-token-secret-0123456789"
    let issuer = BuyerTokenIssuer(secret: secret)
    let tokens = (0..<count).map { issuer.mint(user: "user-\($0)", nowSeconds: nowSeconds, ttlSeconds: 3_600) }
    let headers = tokens.map { "Bearer " + $0 }

    // Every token new to the verifier: HMAC, base64url and the claims' JSON each time (a
    // sale where every buyer sends their first order).
    Benchmark("Token: BuyerToken verify, cache off") { benchmark in
        let verifier = BuyerTokenVerifier(secret: secret, cacheEntries: 0)
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            guard case .success = verifier.verify(tokens[index % count], nowSeconds: nowSeconds) else {
                preconditionFailure("a valid token was refused")
            }
        }
    }

    // A repeat of a verified token: one lookup in the verified-token cache, then the clock check.
    Benchmark("Token: BuyerToken verify, cache hit") { benchmark in
        let verifier = BuyerTokenVerifier(secret: secret)
        for token in tokens { _ = verifier.verify(token, nowSeconds: nowSeconds) }
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            guard case .success = verifier.verify(tokens[index % count], nowSeconds: nowSeconds) else {
                preconditionFailure("a valid token was refused")
            }
        }
    }

    // What the HTTP handler calls: the `Authorization` header parsed, then the token verified.
    Benchmark("Token: BuyerToken verify(authorization:), cache off") { benchmark in
        let verifier = BuyerTokenVerifier(secret: secret, cacheEntries: 0)
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            guard case .success = verifier.verify(authorization: headers[index % count], nowSeconds: nowSeconds) else {
                preconditionFailure("a valid header was refused")
            }
        }
    }

    let signer = PaymentSignature(secret: "bench-payment-secret-0123456789")
    let notifications = (0..<count).map { index in
        let body = Array(#"{"order":"\#(1_000_000_000 + index)","transaction":"tx-\#(index)","amount":1980}"#.utf8)
        let timestamp = String(nowSeconds)
        let nonce = "nonce-\(index)"
        return (timestamp: timestamp, nonce: nonce, body: body, signature: signer.sign(timestamp: timestamp, nonce: nonce, body: body))
    }

    Benchmark("Token: PaymentSignature isValid") { benchmark in
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            let notification = notifications[index % count]
            let valid = signer.isValid(
                timestamp: notification.timestamp, nonce: notification.nonce, body: notification.body,
                signatureHex: notification.signature)
            precondition(valid, "a valid signature was refused")
        }
    }
}
