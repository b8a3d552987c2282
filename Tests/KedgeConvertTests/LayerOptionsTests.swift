import Foundation
import Testing

@testable import KedgeConvert
@testable import KedgeCore

/// The option table behind docs/LAYERS.md (Sources/KedgeConvert/LayerOptions.swift) cannot drift from the code:
/// it has one entry per catalog row and none for a class the catalog lacks, and every config key of every model in
/// Tests/Fixtures is either an option of its class or listed as ignored (for the class or for every class).
@Suite struct LayerOptionsTests {
    @Test func oneEntryPerCatalogRow() {
        let rows = LayerCatalog.familyClassNames.flatMap { $0.classNames }
        for row in rows {
            let covering = LayerOptions.entries.filter { !Set($0.classes).isDisjoint(with: row) }
            #expect(covering.count == 1, "\(row.joined(separator: " / ")): \(covering.count) option entries")
            if let e = covering.first {
                #expect(e.classes == row, "entry \(e.classes) should list exactly the catalog row \(row)")
            }
        }
        for e in LayerOptions.entries {
            #expect(rows.contains(e.classes), "entry \(e.classes) is not a row of LayerCatalog")
        }
        let cells = Set(LayerOptions.cells.flatMap(\.classes))
        #expect(
            cells == Set(recurrentCellClassNames),
            "cell entries \(cells.sorted()) should be exactly the cells RNN takes, \(recurrentCellClassNames)")
    }

    @Test func entriesAreWellFormed() {
        for e in LayerOptions.entries + LayerOptions.cells {
            var seen = Set<String>()
            for k in e.options.flatMap(\.allKeys) + e.ignored.flatMap(\.keys) {
                #expect(seen.insert(k).inserted, "\(e.classes[0]): key '\(k)' is listed twice")
            }
            let texts = e.options.map(\.values) + e.ignored.map(\.why) + [e.note ?? ""]
            for t in texts { #expect(!t.contains("|"), "\(e.classes[0]): '|' would break the Markdown table: \(t)") }
        }
    }

    /// Every config key of a supported class (or RNN cell) in the fixtures' models is documented.
    @Test func everyFixtureConfigKeyIsDocumented() throws {
        let scan = try FixtureConfigs.scan()
        #expect(scan.models >= 800, "read only \(scan.models) models from Tests/Fixtures")
        #expect(scan.unreadable.isEmpty, "cannot read: \(scan.unreadable)")
        // "Class.key" (or "Class" without an entry) -> a file it is in.
        var undocumented: [String: String] = [:]
        var classes = Set<String>()
        var pairs = Set<String>()
        for (cls, keys, file) in scan.layers {
            guard let e = LayerOptions.entry(for: cls) else {
                if LayerCatalog.isSupported(cls) { undocumented[cls + ": no option entry"] = file }
                continue
            }
            classes.insert(cls)
            let documented = e.documentedKeys
            for k in keys {
                pairs.insert(cls + "." + k)
                if !documented.contains(k) && !LayerOptions.isIgnoredEverywhere(k) { undocumented[cls + "." + k] = file }
            }
        }
        let list = undocumented.keys.sorted().map { "\($0) (in \(undocumented[$0]!))" }
        #expect(
            list.isEmpty,
            "config keys neither honoured nor ignored in Sources/KedgeConvert/LayerOptions.swift:\n\(list.joined(separator: "\n"))"
        )
        print("LayerOptionsTests: \(scan.models) fixture models, \(classes.count) classes, \(pairs.count) class/key pairs checked")
    }
}

/// The layer configs of every Keras model in Tests/Fixtures (.h5, .keras, Keras/Keras.js/TF.js model.json).
enum FixtureConfigs {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    struct Scan {
        var models = 0
        /// (class, config keys, file relative to Tests/Fixtures) for every layer and nested layer or cell.
        var layers: [(String, [String], String)] = []
        var unreadable: [String] = []
    }

    static func scan() throws -> Scan {
        var scan = Scan()
        let files = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)!
        for case let url as URL in files {
            let rel = String(url.path.dropFirst(root.path.count + 1))
            // Deliberately broken files for the converter's error tests, and op nodes it must refuse.
            if rel.hasPrefix("converter/bad/") || rel.hasPrefix("ops_refused_k3/") { continue }
            let name = url.lastPathComponent
            let text: String?
            do {
                if name.hasSuffix(".h5") {
                    text = try HDF5File(path: url.path, name: rel).stringAttribute("", "model_config")
                } else if name.hasSuffix(".keras") {
                    text = String(decoding: try SourceModel.open(url.path, configPath: nil).modelJSON, as: UTF8.self)
                } else if name == "model.json" {
                    text = try String(contentsOf: url, encoding: .utf8)
                } else {
                    continue
                }
            } catch {
                scan.unreadable.append("\(rel): \(error)")
                continue
            }
            // A weights-only .h5, or a model.json that is not Keras's (xgboost).
            guard let text, let model = try modelRoot(JSONParser.parse(text, what: rel)) else { continue }
            scan.models += 1
            collect(model, file: rel, into: &scan.layers)
        }
        return scan
    }

    /// `{"class_name": "Sequential"|"Functional"|"Model", "config": ...}`, unwrapped from TF.js's `modelTopology`,
    /// Keras.js's `model_config` and a config stored as a string, as `ModelConfig.parse` does.
    static func modelRoot(_ json: JSON) throws -> JSON? {
        var root = json
        if let t = root["modelTopology"] { root = t }
        if let m = root["model_config"] { root = m }
        if let s = root.string { root = try JSONParser.parse(s) }
        guard let cls = root["class_name"]?.string, ModelConfig.modelClassNames.contains(cls) else { return nil }
        return root
    }

    /// Records a serialized layer's class and config keys, then the layers inside it: a nested model's layers,
    /// a wrapper's `layer` / `backward_layer`, an RNN's `cell` and a StackedRNNCells' `cells`.
    static func collect(_ layer: JSON, file: String, into out: inout [(String, [String], String)]) {
        guard let cls = layer["class_name"]?.string else { return }
        let config = layer["config"]
        if ModelConfig.modelClassNames.contains(cls) {
            // Keras < 2.2 wrote a Sequential's config as the layer list itself.
            for l in config?.array ?? config?["layers"]?.array ?? [] { collect(l, file: file, into: &out) }
            return
        }
        guard let obj = config?.object else { return }
        out.append((cls, obj.keys, file))
        for k in ["layer", "backward_layer", "cell"] {
            if let inner = obj[k], inner.object != nil { collect(inner, file: file, into: &out) }
        }
        for k in ["cells", "layers"] {
            for inner in obj[k]?.array ?? [] { collect(inner, file: file, into: &out) }
        }
    }
}
