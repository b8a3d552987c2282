import Foundation
import KedgeCore
import Testing

@testable import KedgeConvert

@Suite struct InspectTests {
    @Test func listsLayersWeightsAndShapes() throws {
        let r = try Converter.inspect(input: Fixtures.path("k3_nested/model.keras"))
        #expect(r.format == .keras)
        #expect(r.modelName == "outer" && r.modelClass == "Functional")
        #expect(r.inputs == [PortInfo(name: "x", shape: [-1, 3])])
        #expect(r.outputNames == ["head"])
        #expect(r.layers.map(\.path) == ["enc/in_a", "enc/in_b", "dec/dc", "dec/dd", "head"])
        #expect(r.layers[0].weights.map(\.name) == ["kernel", "bias"])
        #expect(r.layers[0].weights.map(\.shape) == [[3, 4], [4]])
        #expect(r.layers[0].weights[0].storedName == "layers/sequential/layers/dense/vars/0")
        #expect(r.problems.isEmpty)
        #expect(r.parameterCount == (3 * 4 + 4) + 4 * 4 + (4 * 3 + 3) + (3 * 2 + 2) + (2 + 1))
    }

    @Test func legacyNamesAreReported() throws {
        let r = try Converter.inspect(input: Fixtures.path("k2_nested/model.h5"))
        #expect(r.kerasVersion?.hasPrefix("2.") == true)
        #expect(r.layers.map(\.path) == ["enc/in_a", "enc/in_b", "head"])
        #expect(r.layers[0].weights.map(\.storedName) == ["in_a/kernel:0", "in_a/bias:0"])
    }
}
