import Foundation
import KedgeCore

/// Writes a bundle folder all at once: into a hidden sibling folder first, renamed into place at the end.
enum BundleFolder {
    static let fileNames = ["model.json", "model_weights.buf", "model_metadata.json"]

    /// Refuses to replace anything but an empty folder or a previous bundle, before any work is done.
    static func checkReplaceable(_ path: String) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { return }
        guard isDir.boolValue else {
            throw KedgeError(.invalidInput, "\(path) exists and is a file; the output must be a folder (or not exist)")
        }
        let contents = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        let foreign = contents.filter { !fileNames.contains($0) && $0 != ".DS_Store" }
        guard foreign.isEmpty else {
            throw KedgeError(
                .invalidInput,
                "\(path) exists and holds files that are not part of a Kedge bundle (\(foreign.sorted().prefix(5).joined(separator: ", "))); refusing to replace it: choose another output folder"
            )
        }
    }

    static func write(_ bundle: ConvertedBundle, to path: String) throws {
        let fm = FileManager.default
        let target = URL(fileURLWithPath: path).standardizedFileURL
        let parent = target.deletingLastPathComponent()
        let base = target.lastPathComponent
        do {
            try fm.createDirectory(at: parent, withIntermediateDirectories: true)
        } catch {
            throw KedgeError(
                .invalidInput, "\(parent.path): cannot create the folder for the bundle (\(error.localizedDescription))"
            )
        }
        try checkReplaceable(target.path)

        let tag = "\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max))"
        let staging = parent.appendingPathComponent(".\(base).kedge-new-\(tag)")
        let retired = parent.appendingPathComponent(".\(base).kedge-old-\(tag)")
        do {
            try fm.createDirectory(at: staging, withIntermediateDirectories: false)
            for (name, bytes) in zip(fileNames, [bundle.modelJSON, bundle.weights, bundle.metadata]) {
                try Data(bytes).write(to: staging.appendingPathComponent(name))
            }
        } catch {
            try? fm.removeItem(at: staging)
            throw KedgeError(.invalidInput, "\(parent.path): cannot write the bundle (\(error.localizedDescription))")
        }

        // rename(2) cannot replace a non-empty folder: move the old one aside, move the new one in, then drop the old.
        let hadOld = fm.fileExists(atPath: target.path)
        if hadOld && rename(target.path, retired.path) != 0 {
            try? fm.removeItem(at: staging)
            throw KedgeError(
                .invalidInput,
                "\(target.path): cannot replace the existing bundle (\(String(cString: strerror(errno))))")
        }
        if rename(staging.path, target.path) != 0 {
            let reason = String(cString: strerror(errno))
            if hadOld { _ = rename(retired.path, target.path) }
            try? fm.removeItem(at: staging)
            throw KedgeError(.invalidInput, "\(target.path): cannot move the new bundle into place (\(reason))")
        }
        if hadOld { try? fm.removeItem(at: retired) }
    }
}
