import Testing

@testable import KedgeCore

/// Config shapes as Keras 2 and Keras 3 write them (see /shared/facts/keras-formats.md).
@Suite struct ModelConfigTests {
    @Test func keras3FunctionalWithMergeArgs() throws {
        let text = #"""
            {"class_name": "Functional", "config": {"name": "m", "layers": [
              {"class_name": "InputLayer", "name": "a", "config": {"batch_shape": [null, 4], "name": "a"}, "inbound_nodes": []},
              {"class_name": "InputLayer", "name": "b", "config": {"batch_shape": [null, 4], "name": "b"}, "inbound_nodes": []},
              {"class_name": "Add", "name": "add", "config": {"name": "add"}, "inbound_nodes": [{"args": [[
                 {"class_name": "__keras_tensor__", "config": {"shape": [null, 4], "keras_history": ["a", 0, 0]}},
                 {"class_name": "__keras_tensor__", "config": {"shape": [null, 4], "keras_history": ["b", 0, 0]}}]],
                 "kwargs": {}}]}],
              "input_layers": [["a", 0, 0], ["b", 0, 0]], "output_layers": ["add", 0, 0]}}
            """#
        let c = try ModelConfig.parse(try JSONParser.parse(text), kerasVersion: "3.15.1")
        #expect(c.inputNames == ["a", "b"])
        #expect(c.outputNames == ["add"])
        #expect(c.inputShapes == [[-1, 4], [-1, 4]])
        #expect(c.layers[2].inboundNodes == [[TensorRef(layer: "a", node: 0, tensor: 0), TensorRef(layer: "b", node: 0, tensor: 0)]])
        #expect(c.kerasMajor == 3)
    }

    @Test func keras2ModelWithNestedOutputs() throws {
        let text = #"""
            {"class_name": "Model", "keras_version": "2.21.0", "config": {"name": "m", "layers": [
              {"class_name": "InputLayer", "name": "x", "config": {"batch_input_shape": [null, 3], "name": "x"}, "inbound_nodes": []},
              {"class_name": "Dense", "name": "d", "config": {"name": "d", "units": 2}, "inbound_nodes": [[["x", 0, 0, {}]]]}],
              "input_layers": [["x", 0, 0]], "output_layers": [["d", 0, 0]]}}
            """#
        let j = try JSONParser.parse(text)
        let c = try ModelConfig.parse(j, kerasVersion: j["keras_version"]?.string)
        #expect(c.kerasMajor == 2)
        #expect(c.outputs == [TensorRef(layer: "d", node: 0, tensor: 0)])
        #expect(c.layers[1].inboundNodes == [[TensorRef(layer: "x", node: 0, tensor: 0)]])
    }

    @Test func keras2SequentialWithoutInputLayerNamesItsInput() throws {
        let text = #"""
            {"class_name": "Sequential", "config": {"name": "s", "layers": [
              {"class_name": "Dense", "config": {"name": "dense_1", "units": 2, "batch_input_shape": [null, 5]}},
              {"class_name": "Dense", "config": {"name": "dense_2", "units": 1}}]}}
            """#
        let c = try ModelConfig.parse(try JSONParser.parse(text), kerasVersion: "2.2.4")
        #expect(c.inputNames == ["dense_1_input"])
        #expect(c.inputShapes == [[-1, 5]])
        #expect(c.outputNames == ["dense_2"])
    }

    @Test func keras1SequentialIsAPlainList() throws {
        let text = #"""
            {"class_name": "Sequential", "config": [
              {"class_name": "Dense", "config": {"name": "dense_1", "output_dim": 2, "input_dim": 5}}]}
            """#
        let c = try ModelConfig.parse(try JSONParser.parse(text), kerasVersion: "1.2.2")
        #expect(c.inputShapes == [[-1, 5]])
        #expect(c.kerasMajor == 1)
    }

    @Test func danglingReferenceIsAnErrorNamingTheLayer() throws {
        let text = #"""
            {"class_name": "Functional", "config": {"name": "m", "layers": [
              {"class_name": "InputLayer", "name": "x", "config": {"batch_shape": [null, 3], "name": "x"}, "inbound_nodes": []},
              {"class_name": "Dense", "name": "d", "config": {"name": "d", "units": 2, "use_bias": false},
               "inbound_nodes": [[["ghost", 0, 0, {}]]]}],
              "input_layers": [["x", 0, 0]], "output_layers": [["d", 0, 0]]}}
            """#
        let c = try ModelConfig.parse(try JSONParser.parse(text), kerasVersion: "3")
        var w = WeightStore()
        w.set(layer: "d", weight: "kernel", Tensor(shape: [3, 2], repeating: 1))
        do {
            _ = try Model(config: c, weights: w)
            Issue.record("expected an error")
        } catch {
            #expect(error.message.contains("'d'") && error.message.contains("ghost"))
        }
    }

    @Test func denseModelRunsAndChecksInputs() throws {
        let text = #"""
            {"class_name": "Functional", "config": {"name": "m", "layers": [
              {"class_name": "InputLayer", "name": "x", "config": {"batch_shape": [null, 3], "name": "x"}, "inbound_nodes": []},
              {"class_name": "Dense", "name": "d", "config": {"name": "d", "units": 2, "activation": "relu"},
               "inbound_nodes": [[["x", 0, 0, {}]]]}],
              "input_layers": [["x", 0, 0]], "output_layers": [["d", 0, 0]]}}
            """#
        let c = try ModelConfig.parse(try JSONParser.parse(text), kerasVersion: "3")
        var w = WeightStore()
        w.set(layer: "d", weight: "kernel", Tensor(shape: [3, 2], data: [1, -1, 2, -2, 3, -3]))
        w.set(layer: "d", weight: "bias", Tensor(shape: [2], data: [0.5, 0.25]))
        let m = try Model(config: c, weights: w)
        let y = try m.predict([Tensor(shape: [2, 3], data: [1, 1, 1, 0, 1, 0])])
        // Row 0: [6.5, -5.75] -> relu -> [6.5, 0]; row 1: [2.5, -1.75] -> [2.5, 0]
        #expect(y[0].shape == [2, 2])
        #expect(y[0].data == [6.5, 0, 2.5, 0])
        do {
            _ = try m.predict([Tensor(shape: [2, 4], repeating: 0)])
            Issue.record("expected a shape error")
        } catch {
            #expect(error.message.contains("x (None, 3)"))
        }
    }
}
