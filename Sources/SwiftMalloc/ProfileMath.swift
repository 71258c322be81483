// The few numerics the sampling profiler needs, without libm: a random stream,
// exponentially distributed sample gaps, and the unbiasing weight of a sample.
//
// Byte-based sampling with mean gap N bytes picks each byte independently with
// probability 1/N, so an allocation of s bytes is sampled with probability
// P(s) = 1 − e^(−s/N); a sampled allocation stands for 1/P(s) allocations and
// s/P(s) bytes (the estimator tcmalloc and jemalloc use).

/// xorshift64*: fast, and good enough to space samples.
struct RandomStream {
    var state: UInt64

    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }

    /// Uniform in (0, 1].
    mutating func unit() -> Double {
        Double((next() >> 11) &+ 1) * (1.0 / 9007199254740992.0)
    }
}

enum ProfileMath {
    static let ln2 = 0.6931471805599453

    /// e^(−x) for x ≥ 0.
    static func expNegative(_ x: Double) -> Double {
        if x > 700 { return 0 }
        let k = Int(x / ln2)
        let r = x - Double(k) * ln2            // 0 ≤ r < ln 2
        var term = 1.0, sum = 1.0, i = 1.0
        while i < 20 {
            term *= -r / i
            sum += term
            i += 1
        }
        return sum * Double(sign: .plus, exponent: -k, significand: 1.0)
    }

    /// Natural logarithm of x > 0.
    static func log(_ x: Double) -> Double {
        let e = Double(x.exponent)
        let m = x.significand                  // 1 ≤ m < 2
        let y = (m - 1) / (m + 1)              // ln m = 2 atanh(y), |y| < 1/3
        let y2 = y * y
        var term = y, sum = 0.0, n = 1.0
        while n < 40 {
            sum += term / n
            term *= y2
            n += 2
        }
        return e * ln2 + 2 * sum
    }

    /// Bytes until the next sample: exponential with mean `mean`.
    static func gap(mean: UInt, random: inout RandomStream) -> Int {
        let g = -log(random.unit()) * Double(mean)
        return g >= 1 ? (g < 0x1p62 ? Int(g) : 1 << 62) : 1
    }

    /// 1 / P(s): how many allocations of `size` bytes one sample stands for.
    static func weight(size: UInt, mean: UInt) -> Double {
        let p = 1 - expNegative(Double(size) / Double(mean))
        return p > 0 ? 1 / p : Double(mean)
    }
}
