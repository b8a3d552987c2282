import ArgumentParser
import Foundation
import KedgeCore

/// Reads a bundle folder (docs/FORMAT.md) into the core.
enum BundleDirectory {
    static func read(_ path: String) throws -> (model: [UInt8], weights: [UInt8], metadata: [UInt8]) {
        let dir = URL(fileURLWithPath: path)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else {
            throw RuntimeFailure("\(path) is not a folder; expected a bundle folder made by `kedge convert`")
        }
        func load(_ name: String) throws -> [UInt8] {
            let url = dir.appendingPathComponent(name)
            guard let d = FileManager.default.contents(atPath: url.path) else {
                throw RuntimeFailure("\(url.path) is missing or unreadable; a bundle has model.json, model_weights.buf and model_metadata.json")
            }
            return [UInt8](d)
        }
        return (try load("model.json"), try load("model_weights.buf"), try load("model_metadata.json"))
    }

    static func load(_ path: String, fuse: Bool = true) throws -> Model {
        let b = try read(path)
        do {
            return try Model(modelJSON: b.model, weights: b.weights, metadata: b.metadata, options: .init(fuse: fuse))
        } catch {
            throw RuntimeFailure("\(path): \(describe(error))")
        }
    }
}

extension KedgeError: LocalizedError {
    public var errorDescription: String? { message }
}

/// The message of a core error, or the error's own description otherwise.
func describe(_ error: Error) -> String {
    (error as? KedgeError)?.message ?? String(describing: error)
}
