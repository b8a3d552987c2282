/// Every failure in the core is a value of this one type, so that Embedded Swift can use typed throws
/// and every caller (CLI, wasm ABI, server) can show the same message a person can act on.
public struct KedgeError: Error, CustomStringConvertible {
    public enum Kind: Int32 {
        case invalidJSON = 1
        case invalidBundle = 2
        case unsupportedLayer = 3
        case invalidConfig = 4
        case missingWeight = 5
        case shapeMismatch = 6
        case invalidInput = 7
        case invalidFile = 8
        case internalError = 9
        /// The small wasm build (kedge.wasm) lacks what the model needs; kedge-full.wasm may have it.
        case notInThisBuild = 10
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

/// Renders a shape as Keras prints it, e.g. `(None, 28, 28, 1)`; `-1` stands for an unknown dimension.
public func describeShape(_ shape: [Int]) -> String {
    var s = "("
    for (i, d) in shape.enumerated() {
        if i > 0 { s += ", " }
        s += d < 0 ? "None" : String(d)
    }
    if shape.count == 1 { s += "," }
    return s + ")"
}
