/// IEEE 754 binary32 to binary16 bits, round to nearest even (NumPy's `npy_floatbits_to_halfbits`). Written by
/// bits because Swift's `Float16` does not exist on Intel Macs. Finite values beyond 65504 become infinity.
func floatToHalfBits(_ value: Float) -> UInt16 {
    let f = value.bitPattern
    let sign = UInt16(truncatingIfNeeded: (f & 0x8000_0000) >> 16)
    let fExp = f & 0x7F80_0000
    var fSig = f & 0x007F_FFFF

    if fExp >= 0x4780_0000 {
        if fExp == 0x7F80_0000 && fSig != 0 {
            // NaN: keep the top payload bits, and make sure the result is still a NaN.
            var h = UInt16(0x7C00) | UInt16(truncatingIfNeeded: fSig >> 13)
            if h == 0x7C00 { h += 1 }
            return sign | h
        }
        return sign | 0x7C00
    }

    if fExp <= 0x3800_0000 {
        // Below the smallest normal half: a subnormal half or a signed zero.
        if fExp < 0x3300_0000 { return sign }
        let e = fExp >> 23
        fSig = 0x0080_0000 + (f & 0x007F_FFFF)
        fSig >>= (113 - e)
        // Round half to even; the shift above may have dropped low bits, which the second test looks at.
        if (fSig & 0x0000_3FFF) != 0x0000_1000 || (f & 0x0000_07FF) != 0 {
            fSig += 0x0000_1000
        }
        return sign + UInt16(truncatingIfNeeded: fSig >> 13)
    }

    let hExp = UInt16(truncatingIfNeeded: (fExp - 0x3800_0000) >> 13)
    if (fSig & 0x0000_3FFF) != 0x0000_1000 { fSig += 0x0000_1000 }
    // A carry out of the significand correctly bumps the exponent (up to infinity).
    return sign + (hExp + UInt16(truncatingIfNeeded: fSig >> 13))
}
