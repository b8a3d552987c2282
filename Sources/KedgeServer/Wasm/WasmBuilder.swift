import Foundation
import Logging

/// Keeps the modules in `wasm/out` (kedge.wasm, kedge-full.wasm and their relaxed-SIMD flavours, `WasmVariant`)
/// in step with the sources they are built from.
///
/// The source hash covers every file under the input folders (Sources/KedgeCore, Sources/KedgeWasm, wasm/
/// except its output folder); it is stored beside the modules (`kedge.wasm.source-sha256`) after a successful
/// build, so a start with unchanged sources builds nothing, unless kedge.wasm or kedge-full.wasm is missing (an
/// output folder from an older build, or a module removed by hand): then it builds rather than serve half a set.
public struct WasmBuilder: Sendable {
    public var repositoryRoot: String
    /// Folders (relative to the root) whose content the module is built from.
    public var inputs: [String]
    /// Output folder, relative to the root; excluded from the hash.
    public var outputFolder: String
    /// The build command, run from the root.
    public var buildCommand: [String]
    /// kedge.wasm to serve when no build is possible, relative to the root, first found wins (the other modules
    /// are taken from beside it).
    public var prebuilt: [String]
    public var timeout: Duration

    public init(
        repositoryRoot: String,
        inputs: [String] = ["Sources/KedgeCore", "Sources/KedgeWasm", "wasm"],
        outputFolder: String = "wasm/out",
        buildCommand: [String] = ["/bin/bash", "wasm/build.sh"],
        prebuilt: [String] = ["wasm/prebuilt/kedge.wasm", "web/kedge.wasm"],
        timeout: Duration = .seconds(1800)
    ) {
        self.repositoryRoot = repositoryRoot
        self.inputs = inputs
        self.outputFolder = outputFolder
        self.buildCommand = buildCommand
        self.prebuilt = prebuilt
        self.timeout = timeout
    }

    var modulePath: String { repositoryRoot + "/" + outputFolder + "/" + WasmVariant.slim.fileName }
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

    /// Builds when the stored hash differs from the sources' (or a module a build always writes is missing), and
    /// says what is served.
    public func ensure(logger: Logger) async -> WasmState {
        let hash: String
        do {
            hash = try sourceHash()
        } catch {
            return fallback(reason: "cannot hash the wasm sources: \(error)", logger: logger)
        }
        let stored = try? String(contentsOfFile: hashPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        var why = stored == hash ? "no \(WasmVariant.slim.fileName) in \(outputFolder)" : "sources changed"
        if stored == hash, let state = describe(modulePath, status: .current, message: nil) {
            let missing = Self.missingRequired(state)
            if missing.isEmpty {
                logger.info(
                    "wasm modules are up to date",
                    metadata: ["source_sha256": "\(hash.prefix(16))", "modules": "\(Self.names(state))"])
                return state
            }
            why = "no " + missing.map(\.fileName).joined(separator: " or ") + " in " + outputFolder
        }
        let script = repositoryRoot + "/" + (buildCommand.last ?? "")
        guard FileManager.default.fileExists(atPath: script) else {
            return fallback(reason: "\(buildCommand.joined(separator: " ")) does not exist", logger: logger)
        }
        logger.info(
            "building the wasm modules (\(why))",
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
        // A build that left out kedge-full.wasm is served (describe says what is missing) but not recorded as
        // current, so the next start builds again.
        if Self.missingRequired(state).isEmpty {
            try? (hash + "\n").write(toFile: hashPath, atomically: true, encoding: .utf8)
            logger.info("built the wasm modules", metadata: ["modules": "\(Self.names(state))", "size": "\(state.size ?? 0)"])
        } else {
            logger.warning("the wasm build left modules out", metadata: ["message": "\(state.message ?? "")"])
        }
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
        return WasmState(
            status: .missing, message: "no \(outputFolder)/\(WasmVariant.slim.fileName) and building is off")
    }

    /// kedge.wasm at `path` and whichever of the other modules lie beside it; nil without kedge.wasm. A
    /// relaxed-SIMD module is taken only if it is not older than the simd128 module of its build (wasm/build.sh
    /// writes it after that one), so a stale one never pairs with a fresh build. kedge.wasm and kedge-full.wasm
    /// are built side by side, in either order, so they are not compared. The message says what is missing.
    func describe(_ path: String, status: WasmState.Status, message: String?) -> WasmState? {
        guard let real = PathSafety.realPath(path) else { return nil }
        let folder = (real as NSString).deletingLastPathComponent
        var found: [WasmVariant: (module: WasmModule, modified: Int64)] = [:]
        for v in WasmVariant.allCases {
            let p = v == .slim ? real : folder + "/" + v.fileName
            guard let r = PathSafety.realPath(p), let fp = FileFingerprint.of(r), fp.size > 0,
                let sha = try? SHA256.hexDigest(ofFile: r)
            else { continue }
            found[v] = (WasmModule(path: r, sha256: sha, size: fp.size), fp.modifiedNanoseconds)
        }
        guard found[.slim] != nil else { return nil }
        var modules: [WasmVariant: WasmModule] = [:]
        for (v, f) in found {
            if v.simd128Flavour != v {
                guard let base = found[v.simd128Flavour], f.modified >= base.modified else { continue }
            }
            modules[v] = f.module
        }
        var state = WasmState(status: status, message: message, modules: modules)
        let missing = Self.missingRequired(state)
        if !missing.isEmpty {
            let note = "no " + missing.map(\.fileName).joined(separator: " or ") + " beside \(WasmVariant.slim.fileName)"
            state.message = message.map { $0 + "; " + note } ?? note
        }
        return state
    }

    static func missingRequired(_ state: WasmState) -> [WasmVariant] {
        WasmVariant.allCases.filter { $0.isRequired && state[$0] == nil }
    }

    static func names(_ state: WasmState) -> String {
        WasmVariant.allCases.filter { state[$0] != nil }.map(\.fileName).joined(separator: ", ")
    }
}
