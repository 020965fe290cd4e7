import FlashSaleTestKit
import Testing

@testable import FlashSale
@testable import FlashSaleHTTP

/// The one-pass scanner of the hot path never disagrees with the full parser: whatever it
/// accepts, the full parser reads the same way; everything else falls back to the full parser.
@Suite struct FlatJSONScannerTests {
    static let bodies: [String] = [
        #"{"sku":"P1","qty":1}"#, #"{ "qty" : 2 , "sku" : "P1" }"#, "{\n\t\"sku\": \"P1\",\r\n\"qty\": 3}\n",
        #"{"sku":"P1","qty":1,"coupon":null}"#, #"{"sku":"P1","qty":1,"coupon":"c-1"}"#, #"{}"#, #"{"sku":"P1"}"#,
        #"{"sku":"P1","qty":-1}"#, #"{"sku":"P1","qty":0}"#, #"{"sku":"P1","qty":01}"#, #"{"sku":"P1","qty":1.0}"#,
        #"{"sku":"P1","qty":1e2}"#, #"{"sku":"P1","qty":1E2}"#, #"{"sku":"P1","qty":123456789012345678901}"#,
        #"{"sku":"P1","qty":-}"#, #"{"sku":"P\u0031","qty":1}"#, #"{"sku":"P\"1","qty":1}"#, #"{"sku":"Pé","qty":1}"#,
        #"{"sku":"P1","sku":"P2","qty":1}"#, #"{"sku":"P1","qty":1,"qty":2}"#, #"{"sku":"P1","qty":1,"x":1}"#,
        #"{"sku":"P1","qty":1}x"#, #"{"sku":"P1","qty":1},"#, #"{"sku":"P1","qty":1"#, #"{"sku":"P1",,"qty":1}"#,
        #"{"sku":"P1","qty":1,}"#, #"{"sku":["P1"],"qty":1}"#, #"{"sku":"P1","qty":true}"#, #"{"sku":"P1","qty":nul}"#,
        #"{"sku":null,"qty":1}"#, #"{"sku":"P1","qty":1,"coupon":5}"#, #"[{"sku":"P1"}]"#, #""#, #" "#, #"{"#, #"}"#,
        "{\"sku\":\"P1\u{0}\",\"qty\":1}", "{\"sku\":\"P1\",\"qty\":1}\u{0}", #"{"sku" "P1","qty":1}"#, #"{sku:"P1","qty":1}"#,
        #"{"sku":"","qty":1}"#, #"{"":"P1","qty":1}"#, #"{"sku":"P1","qty":-9223372036854775808}"#,
        #"{"sku":"P1","qty":9223372036854775807}"#, #"{"sku":"P1","qty":1234567890123456789}"#, #"{"sku":"P1","qty":-0}"#, #"{"sku":"P1","qty":999999999999999999}"#,
    ]

    @Test(arguments: bodies) func orderBodiesReadTheSameAsTheFullParser(_ text: String) {
        let body = Array(text.utf8)
        if let plain = OrderBody.scanPlain(body) {
            #expect(OrderBody.parseTree(body) == .success(plain), "the scanner accepted what the full parser reads otherwise: \(text)")
        }
        #expect(OrderBody.parse(body) == OrderBody.parseTree(body))
    }

    @Test func plainBodiesTakeTheOnePassPath() {
        #expect(OrderBody.scanPlain(Array(#"{"sku":"P1","qty":1}"#.utf8)) == OrderBody(sku: "P1", qty: 1))
        #expect(OrderBody.scanPlain(Array(#"{"sku":"P1","qty":2,"coupon":"c"}"#.utf8)) == OrderBody(sku: "P1", qty: 2, coupon: "c"))
    }

    /// Random mutations of plain bodies (seeded, so a failure repeats): deletions, insertions
    /// and substitutions of the bytes JSON cares about.
    @Test func mutatedBodiesNeverDisagree() {
        var random = SplitMix64(state: 0x5EED_F1A7)
        let alphabet = Array(#"{}[]":,.-+eE0123456789 \tnulltrue"skuqtycoupon\é"#.utf8)
        for _ in 0..<20_000 {
            var body = Array(Self.bodies[Int.random(in: 0..<8, using: &random)].utf8)
            for _ in 0..<Int.random(in: 1...3, using: &random) {
                let position = Int.random(in: 0...body.count, using: &random)
                switch Int.random(in: 0..<3, using: &random) {
                case 0 where position < body.count: body.remove(at: position)
                case 1: body.insert(alphabet.randomElement(using: &random)!, at: position)
                default: if position < body.count { body[position] = alphabet.randomElement(using: &random)! }
                }
            }
            if let plain = OrderBody.scanPlain(body) {
                #expect(OrderBody.parseTree(body) == .success(plain), "\(String(decoding: body, as: UTF8.self))")
            }
        }
    }

    static let payloads: [String] = [
        #"{"sub":"u1","exp":2000000000}"#, #"{"sub":"u1","iat":1,"exp":2000000000}"#, #"{"sub":"u1","exp":2000000000,"nbf":5}"#,
        #"{"sub":"u 1","exp":2000000000}"#, #"{"sub":"u1","exp":2000000000.5}"#, #"{"sub":"u1"}"#, #"{"exp":1}"#,
        #"{"sub":"u1","exp":1,"exp":2}"#, #"{"sub":"u1","exp":1,"aud":"x"}"#, #"{"sub":5,"exp":1}"#, #"{"sub":null,"exp":1}"#,
        #"{"sub":"u1","exp":"1"}"#, #"{"sub":"u1","exp":1,"nbf":null}"#, #"{"sub":"\u0075","exp":1}"#,
    ]

    @Test(arguments: payloads) func tokenClaimsReadTheSameAsTheFullParser(_ text: String) {
        let payload = Array(text.utf8)
        if let plain = BuyerTokenVerifier.scanPlainClaims(payload) {
            #expect(BuyerTokenVerifier.parseClaimsTree(payload) == .success(plain), "\(text)")
        }
    }
}
