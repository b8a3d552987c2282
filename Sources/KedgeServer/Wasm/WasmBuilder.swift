import Foundation
import Logging

/// Keeps `wasm/out/kedge.wasm` in step with the sources it is built from.
///
/// The source hash covers every file under the input folders (Sources/KedgeCore, Sources/KedgeWasm, wasm/
/// except its output folder); it is stored beside the module (`kedge.wasm.source-sha256`) after a successful
/// build, so a start with unchanged sources builds nothing.
public struct WasmBuilder: Sendable {
    public var repositoryRoot: String
    /// Folders (relative to the root) whose content the module is built from.
    public var inputs: [String]
    /// Output folder, relative to the root; excluded from the hash.
    public var outputFolder: String
    public var moduleName: String
    /// The build command, run from the root.
    public var buildCommand: [String]
    /// Modules to serve when no build is possible, relative to the root, first found wins.
    public var prebuilt: [String]
    public var timeout: Duration

    public init(
        repositoryRoot: String,
        inputs: [String] = ["Sources/KedgeCore", "Sources/KedgeWasm", "wasm"],
        outputFolder: String = "wasm/out",
        moduleName: String = "kedge.wasm",
        buildCommand: [String] = ["/bin/bash", "wasm/build.sh"],
        prebuilt: [String] = ["wasm/prebuilt/kedge.wasm", "web/kedge.wasm"],
        timeout: Duration = .seconds(1800)
    ) {
        self.repositoryRoot = repositoryRoot
        self.inputs = inputs
        self.outputFolder = outputFolder
        self.moduleName = moduleName
        self.buildCommand = buildCommand
        self.prebuilt = prebuilt
        self.timeout = timeout
    }

    var modulePath: String { repositoryRoot + "/" + outputFolder + "/" + moduleName }
    var hashPath: String { modulePath + ".source-sha256" }

    /// SHA-256 over (relative path, content hash) of every regular, non-hidden input file, in path order.
    public func sourceHash() throws -> String {
        let fm = FileManager.default
        var lines: [String] = []
        let excluded = repositoryRoot + "/" + outputFolder
        for input in inputs {
            let base = repositoryRoot + "/" + input
            guard let walker = fm.enumerator(atPath: base) else { continue }
            while let rel = walker.nextObject() as? String {
                let full = base + "/" + rel
                if rel.split(separator: "/").contains(where: { $0.hasPrefix(".") }) { continue }
                if full == excluded || full.hasPrefix(excluded + "/") { continue }
                var st = stat()
                guard lstat(full, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { continue }
                lines.append("\(input)/\(rel)\t\(try SHA256.hexDigest(ofFile: full))")
            }
        }
        lines.sort()
        return SHA256.hexDigest(Array(lines.joined(separator: "\n").utf8))
    }

    /// Builds when the stored hash differs from the sources' (or the module is missing), and says what is served.
    public func ensure(logger: Logger) async -> WasmState {
        let hash: String
        do {
            hash = try sourceHash()
        } catch {
            return fallback(reason: "cannot hash the wasm sources: \(error)", logger: logger)
        }
        let stored = try? String(contentsOfFile: hashPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        if stored == hash, let state = describe(modulePath, status: .current, message: nil) {
            logger.info("kedge.wasm is up to date", metadata: ["source_sha256": "\(hash.prefix(16))"])
            return state
        }
        let script = repositoryRoot + "/" + (buildCommand.last ?? "")
        guard FileManager.default.fileExists(atPath: script) else {
            return fallback(reason: "\(buildCommand.joined(separator: " ")) does not exist", logger: logger)
        }
        logger.info(
            "building kedge.wasm (sources changed)",
            metadata: ["command": "\(buildCommand.joined(separator: " "))", "source_sha256": "\(hash.prefix(16))"])
        let log = repositoryRoot + "/" + outputFolder + "/build.log"
        do {
            try FileManager.default.createDirectory(
                atPath: repositoryRoot + "/" + outputFolder, withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            guard let handle = FileHandle(forWritingAtPath: log) else { throw ConversionError("cannot write \(log)") }
            defer { try? handle.close() }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: buildCommand[0])
            process.arguments = Array(buildCommand.dropFirst())
            process.currentDirectoryURL = URL(fileURLWithPath: repositoryRoot)
            process.standardOutput = handle
            process.standardError = handle
            process.standardInput = FileHandle.nullDevice
            let status = try await ChildProcess.run(process, timeout: timeout)
            guard status.code == 0, !status.timedOut else {
                let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                let why = status.timedOut ? "timed out" : "failed (status \(status.code))"
                return fallback(
                    reason: "the wasm build \(why): \(ChildProcess.tail(text, maxCharacters: 600)) (full log: \(log))",
                    logger: logger)
            }
        } catch {
            return fallback(reason: "the wasm build could not run: \(error)", logger: logger)
        }
        guard let state = describe(modulePath, status: .current, message: nil) else {
            return fallback(reason: "the wasm build succeeded but wrote no \(modulePath)", logger: logger)
        }
        try? (hash + "\n").write(toFile: hashPath, atomically: true, encoding: .utf8)
        logger.info("built kedge.wasm", metadata: ["size": "\(state.size ?? 0)"])
        return state
    }

    /// Without a fresh build: a prebuilt module if the project ships one, else the last build, else nothing.
    func fallback(reason: String, logger: Logger) -> WasmState {
        for p in prebuilt {
            if let s = describe(repositoryRoot + "/" + p, status: .prebuilt, message: reason + "; serving prebuilt \(p)") {
                logger.warning("kedge.wasm not built; serving a prebuilt module", metadata: ["reason": "\(reason)", "module": "\(p)"])
                return s
            }
        }
        if let s = describe(modulePath, status: .stale, message: reason + "; serving an older build") {
            logger.warning("kedge.wasm not rebuilt; serving an older build", metadata: ["reason": "\(reason)"])
            return s
        }
        logger.error("no kedge.wasm to serve", metadata: ["reason": "\(reason)"])
        return WasmState(status: .missing, message: reason)
    }

    /// The module to serve when building is switched off.
    public func unchecked() -> WasmState {
        if let s = describe(modulePath, status: .unchecked, message: "not checked against the sources") { return s }
        for p in prebuilt {
            if let s = describe(repositoryRoot + "/" + p, status: .prebuilt, message: "serving prebuilt \(p)") {
                return s
            }
        }
        return WasmState(status: .missing, message: "no \(outputFolder)/\(moduleName) and building is off")
    }

    func describe(_ path: String, status: WasmState.Status, message: String?) -> WasmState? {
        guard let real = PathSafety.realPath(path), let sha = try? SHA256.hexDigest(ofFile: real),
            let fp = FileFingerprint.of(real), fp.size > 0
        else { return nil }
        var state = WasmState(status: status, path: real, sha256: sha, size: fp.size, message: message)
        // The relaxed-SIMD module wasm/build.sh writes beside kedge.wasm, served only next to the build it came
        // with (not older than it), so a stale one never pairs with a fresh kedge.wasm.
        let sibling = (real as NSString).deletingLastPathComponent + "/kedge-relaxed.wasm"
        if let r = PathSafety.realPath(sibling), let rfp = FileFingerprint.of(r), rfp.size > 0, rfp.modified >= fp.modified,
            let rsha = try? SHA256.hexDigest(ofFile: r)
        {
            state.relaxedPath = r
            state.relaxedSHA256 = rsha
        }
        return state
    }
}
