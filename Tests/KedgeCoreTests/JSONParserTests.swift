import Testing

@testable import KedgeCore

@Suite struct JSONParserTests {
    @Test func parsesNestedValuesAndKeepsKeyOrder() throws {
        let j = try JSONParser.parse(#"{"b": [1, 2.5, -3e2, true, null], "a": {"x": "y\u00e9\n"}, "c": false}"#)
        #expect(j.object?.keys == ["b", "a", "c"])
        #expect(j["b"]?[0]?.int == 1)
        #expect(j["b"]?[1]?.double == 2.5)
        #expect(j["b"]?[2]?.double == -300)
        #expect(j["b"]?[3]?.bool == true)
        #expect(j["b"]?[4]?.isNull == true)
        #expect(j["a"]?["x"]?.string == "yé\n")
        #expect(j["c"]?.bool == false)
    }

    @Test func decimalsRoundLikeFloat32Hyperparameters() throws {
        // Keras writes float32 hyper-parameters as shortest decimals; they must come back as the same Float.
        for text in ["0.001", "1e-05", "0.99", "1.0000000116860974e-07", "0.30000001192092896", "6.0", "123456.789"] {
            let parsed = try JSONParser.parse(text).double!
            let expected: Double = switch text {
            case "0.001": 0.001
            case "1e-05": 1e-05
            case "0.99": 0.99
            case "1.0000000116860974e-07": 1.0000000116860974e-07
            case "0.30000001192092896": 0.30000001192092896
            case "6.0": 6.0
            default: 123456.789
            }
            #expect(Float(parsed) == Float(expected), "\(text)")
        }
    }

    @Test func acceptsPythonNonFiniteLiterals() throws {
        let j = try JSONParser.parse("[NaN, Infinity, -Infinity]")
        #expect(j[0]?.double?.isNaN == true)
        #expect(j[1]?.double == .infinity)
        #expect(j[2]?.double == -.infinity)
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\" 1}", "\"abc", "tru", "[1] 2", "{\"a\":01x}", "\"\\q\""])
    func rejectsMalformedInputWithAPosition(_ text: String) {
        #expect(throws: KedgeError.self) { try JSONParser.parse(text) }
        do {
            _ = try JSONParser.parse(text, what: "model.json")
        } catch {
            #expect(error.message.hasPrefix("model.json: "))
            #expect(error.kind == .invalidJSON)
        }
    }

    @Test func rejectsPathologicalNesting() {
        let deep = String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000)
        #expect(throws: KedgeError.self) { try JSONParser.parse(deep) }
    }
}

@Suite struct JSONWriterTests {
    @Test(arguments: [0.1, -0.123456789, 1e-7, 3.141592653589793, 123456.789, 6.02214076e23, -2.5e-300, 0.5, 1e21])
    func numbersRoundTripThroughTheParser(_ v: Double) throws {
        let back = try JSONParser.parse(JSON.format(v)).double!
        #expect(abs(back - v) <= abs(v) * 1e-15, "\(JSON.format(v))")
        #expect(Float(back) == Float(v))
    }

    @Test func writesNestedValuesThatParseBack() throws {
        var o = JSONObject()
        o["name"] = .string("a \"quoted\"\nline")
        o["values"] = .array([.number(1), .number(-2.5), .null, .bool(true)])
        let text = JSON.object(o).serialized(pretty: true)
        let back = try JSONParser.parse(text)
        #expect(back["name"]?.string == "a \"quoted\"\nline")
        #expect(back["values"]?[1]?.double == -2.5)
        #expect(back["values"]?[2]?.isNull == true)
    }
}

/// JSON.format and the byte-level text helpers (Support/UTF8Text.swift) that replace String's Character-based
/// methods in the core to keep the Unicode tables out of kedge.wasm.
@Suite struct UTF8TextTests {
    // Outputs of the Character-based version this replaced (identical on 900k random doubles).
    @Test func formatTrimsTheMantissa() {
        #expect(JSON.format(0.5) == "5e-1")
        #expect(JSON.format(1e21) == "1e21")
        #expect(JSON.format(-2.5e-300) == "-2.499999999999998e-300")
        #expect(JSON.format(123456.789) == "1.23456789e5")
        #expect(JSON.format(0.1) == "1e-1")
        #expect(JSON.format(3.141592653589793) == "3.1415926535897932")
        #expect(JSON.format(-42) == "-42")
    }

    @Test(arguments: ["", "r", "relu", "keras.activations.relu", "Int32", "uint8", "LSTMCell", "Cell", "SAME", "Valid"])
    func helpersAgreeWithStringOnASCII(_ s: String) {
        #expect(s.utf8HasPrefix("keras.activations.") == s.hasPrefix("keras.activations."))
        #expect(s.utf8HasPrefix("int") == s.hasPrefix("int"))
        #expect(s.utf8HasSuffix("Cell") == s.hasSuffix("Cell"))
        #expect(s.asciiLowercased() == s.lowercased())
        if s.count >= 4 {
            #expect(s.utf8Dropping(4) == String(s.dropFirst(4)))
            #expect(s.utf8Dropping(4, fromEnd: true) == String(s.dropLast(4)))
        }
    }
}
