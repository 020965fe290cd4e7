/// Base64url without padding (RFC 4648 §5), as JWTs use it.
///
/// Decoding is strict so that every byte string has exactly one accepted text: padding,
/// characters outside the alphabet, impossible lengths and non-zero unused trailing bits are
/// all rejected. Encoding only: nothing here is cryptography.
enum Base64URL {
    private static let alphabet: StaticString = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

    /// 0...63 for alphabet bytes, 0xFF for every other byte.
    private static let decodeTable: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for index in 0..<64 {
            table[Int(alphabet.utf8Start[index])] = UInt8(index)
        }
        return table
    }()

    /// The unpadded base64url text of `bytes`.
    static func encode(_ bytes: some Collection<UInt8>) -> String {
        let input = Array(bytes)
        let outputCount = (input.count * 4 + 2) / 3
        return String(unsafeUninitializedCapacity: outputCount) { output in
            let table = alphabet.utf8Start
            var inIndex = 0
            var outIndex = 0
            while inIndex + 3 <= input.count {
                let chunk = UInt32(input[inIndex]) << 16 | UInt32(input[inIndex + 1]) << 8 | UInt32(input[inIndex + 2])
                output[outIndex] = table[Int(chunk >> 18 & 0x3F)]
                output[outIndex + 1] = table[Int(chunk >> 12 & 0x3F)]
                output[outIndex + 2] = table[Int(chunk >> 6 & 0x3F)]
                output[outIndex + 3] = table[Int(chunk & 0x3F)]
                inIndex += 3
                outIndex += 4
            }
            switch input.count - inIndex {
            case 1:
                let chunk = UInt32(input[inIndex]) << 16
                output[outIndex] = table[Int(chunk >> 18 & 0x3F)]
                output[outIndex + 1] = table[Int(chunk >> 12 & 0x3F)]
                outIndex += 2
            case 2:
                let chunk = UInt32(input[inIndex]) << 16 | UInt32(input[inIndex + 1]) << 8
                output[outIndex] = table[Int(chunk >> 18 & 0x3F)]
                output[outIndex + 1] = table[Int(chunk >> 12 & 0x3F)]
                output[outIndex + 2] = table[Int(chunk >> 6 & 0x3F)]
                outIndex += 3
            default:
                break
            }
            return outIndex
        }
    }

    /// The bytes that unpadded base64url `text` encodes; nil if it is not canonical base64url.
    static func decode(_ text: UnsafeRawBufferPointer) -> [UInt8]? {
        let remainder = text.count % 4
        guard remainder != 1 else { return nil }
        let outputCount = text.count / 4 * 3 + (remainder == 0 ? 0 : remainder - 1)
        let table = decodeTable
        var output = [UInt8]()
        output.reserveCapacity(outputCount)
        var accumulator: UInt32 = 0
        var bitCount = 0
        for byte in text {
            let value = table[Int(byte)]
            guard value != 0xFF else { return nil }
            accumulator = accumulator << 6 | UInt32(value)
            bitCount += 6
            if bitCount >= 8 {
                bitCount -= 8
                output.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bitCount)))
                accumulator &= (1 << UInt32(bitCount)) - 1
            }
        }
        // Leftover bits (2 or 4) must be zero, or two texts would decode to the same bytes.
        guard accumulator == 0 else { return nil }
        return output
    }

    /// `decode` for any byte collection.
    static func decode(_ text: some Collection<UInt8>) -> [UInt8]? {
        if let result = text.withContiguousStorageIfAvailable({ decode(UnsafeRawBufferPointer($0)) }) {
            return result
        }
        return Array(text).withUnsafeBytes { decode($0) }
    }
}
