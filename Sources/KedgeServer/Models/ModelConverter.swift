import Foundation

/// Turns a model file (or a TF.js / Keras.js folder) into a bundle folder. The server never interprets model
/// files itself; it hands them to a converter and serves what comes out.
public protocol ModelConverter: Sendable {
    /// Writes a bundle (model.json, model_weights.buf, model_metadata.json) into `outputDirectory`, which does
    /// not exist yet. Throws an error whose description a person can act on.
    func convert(input: String, outputDirectory: String) async throws
}

/// A conversion that failed, with the converter's own words.
public struct ConversionError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A converter given as a closure (in-process conversion, or a stand-in in tests).
public struct ClosureConverter: ModelConverter {
    let body: @Sendable (String, String) async throws -> Void
    public init(_ body: @escaping @Sendable (_ input: String, _ outputDirectory: String) async throws -> Void) {
        self.body = body
    }
    public func convert(input: String, outputDirectory: String) async throws {
        try await body(input, outputDirectory)
    }
}

/// Runs `<executable> convert <input> --output <dir>` in a child process, so that a converter crash on a hostile
/// or broken file (libhdf5 is C) costs one conversion, not the server. The child is killed after `timeout`
/// or when the calling task is cancelled (graceful shutdown).
public struct SubprocessConverter: ModelConverter {
    public var executable: String
    public var arguments: [String]
    public var timeout: Duration

    public init(executable: String, arguments: [String] = ["convert"], timeout: Duration = .seconds(600)) {
        self.executable = executable
        self.arguments = arguments
        self.timeout = timeout
    }

    public func convert(input: String, outputDirectory: String) async throws {
        let log = outputDirectory + ".log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: log) }
        guard let logHandle = FileHandle(forWritingAtPath: log) else {
            throw ConversionError("cannot create the conversion log \(log)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments + [input, "--output", outputDirectory]
        process.standardOutput = logHandle
        process.standardError = logHandle
        process.standardInput = FileHandle.nullDevice
        let status = try await ChildProcess.run(process, timeout: timeout)
        try? logHandle.close()
        if status.timedOut {
            throw ConversionError("conversion took longer than \(timeout) and was stopped")
        }
        guard status.code == 0 else {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            let detail = ChildProcess.tail(Self.cleanMessage(text), maxCharacters: 2000)
            let how = status.signaled ? "was killed by signal \(status.code)" : "exited with status \(status.code)"
            throw ConversionError(detail.isEmpty ? "the converter \(how)" : detail)
        }
    }
}

extension SubprocessConverter {
    /// The converter's words without the CLI's framing ("Error: " prefix, usage hints).
    static func cleanMessage(_ text: String) -> String {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        lines.removeAll { line in
            let t = line.trimmingCharacters(in: .whitespaces)
            return t.hasPrefix("Usage: ") || (t.hasPrefix("See '") && t.contains("--help"))
        }
        var out = lines.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
        if out.hasPrefix("Error: ") { out.removeFirst("Error: ".count) }
        return out
    }
}

/// Waiting for a child process without blocking a thread, with a time limit and cancellation. A killed child's
/// own children keep Foundation waiting until they exit (they inherit the descriptor it watches).
enum ChildProcess {
    struct Status: Sendable {
        var code: Int32
        var signaled: Bool
        var timedOut: Bool
    }

    static func run(_ process: Process, timeout: Duration) async throws -> Status {
        let box = TerminationBox()
        process.terminationHandler = { p in
            box.finish(Status(code: p.terminationStatus, signaled: p.terminationReason == .uncaughtSignal, timedOut: false))
        }
        try process.run()
        let pid = process.processIdentifier
        let watchdog = Task {
            try await Task.sleep(for: timeout)
            box.markTimedOut()
            kill(pid, SIGKILL)
        }
        defer { watchdog.cancel() }
        var status = await withTaskCancellationHandler {
            await box.wait()
        } onCancel: {
            kill(pid, SIGKILL)
        }
        if box.timedOut { status.timedOut = true }
        return status
    }

    /// The last lines of a log, trimmed to `maxCharacters`.
    static func tail(_ text: String, maxCharacters: Int) -> String {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.count > maxCharacters else { return trimmed }
        return "..." + trimmed.suffix(maxCharacters)
    }
}

private final class TerminationBox: @unchecked Sendable {
    private let lock = NSLock()
    private var status: ChildProcess.Status?
    private var waiter: CheckedContinuation<ChildProcess.Status, Never>?
    private var _timedOut = false

    var timedOut: Bool { lock.withLock { _timedOut } }
    func markTimedOut() { lock.withLock { _timedOut = true } }

    func finish(_ s: ChildProcess.Status) {
        let w: CheckedContinuation<ChildProcess.Status, Never>? = lock.withLock {
            status = s
            defer { waiter = nil }
            return waiter
        }
        w?.resume(returning: s)
    }

    func wait() async -> ChildProcess.Status {
        await withCheckedContinuation { c in
            let ready: ChildProcess.Status? = lock.withLock {
                if let status { return status }
                waiter = c
                return nil
            }
            if let ready { c.resume(returning: ready) }
        }
    }
}
